"""cli.main imports only the module of the command it runs: its map of commands to modules must be what the
modules register, or a command would be missing from the app built for it."""

from __future__ import annotations

import subprocess
import sys

import typer

from accelpool.cli import main as cli_main


def _names(module: str) -> set[str]:
    app = typer.Typer()
    __import__(f"accelpool.cli.{module}", fromlist=["register"]).register(app)
    return {c.name or c.callback.__name__ for c in app.registered_commands} | {
        g.name for g in app.registered_groups if g.name
    }


def test_the_map_is_what_each_module_registers():
    registered = {name: module for module in cli_main.MODULES for name in _names(module)}
    assert registered == cli_main.COMMANDS


def test_a_command_gets_its_module_and_help_gets_all():
    assert cli_main.modules_for(["jobs", "--state", "queued"]) == ("tenant",)
    assert cli_main.modules_for(["--data-dir", "/d", "grants", "list"]) == ("operator",)
    assert cli_main.modules_for(["--help"]) == cli_main.MODULES
    assert cli_main.modules_for(["job"]) == cli_main.MODULES  # mistyped: Click suggests from every command
    # an option's value that is also a command's name only adds a module
    assert cli_main.modules_for(["show", "--data-dir", "plan"]) == ("plan", "tenant")


def test_a_tenant_command_does_not_import_numpy_or_the_policies():
    code = (
        "import sys; from accelpool.cli.main import main; rc = main(['jobs', '--help']); "
        "print(rc, 'numpy' in sys.modules, 'accelpool.core.policies' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[-3:] == ["0", "False", "False"], out


def test_the_whole_app_is_there_for_cli_runners():
    app = cli_main.app
    names = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    assert names == set(cli_main.COMMANDS)
