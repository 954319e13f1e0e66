import pytest

from nn import cli


@pytest.fixture
def run_cli(capsys):
    """Run the ``tensorlib`` command in this process: (exit code, stdout, stderr)."""
    def run(args):
        code = cli.main(args)
        captured = capsys.readouterr()
        return code, captured.out, captured.err
    return run
