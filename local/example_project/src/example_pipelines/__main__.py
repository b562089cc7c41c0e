from kedro.framework.cli.utils import find_run_command

from example_pipelines import __name__ as package_name

if __name__ == "__main__":
    find_run_command(package_name)()
