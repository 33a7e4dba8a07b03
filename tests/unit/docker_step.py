"""The Docker step of deploy.py alone, for the @fake platform simulations
(tests/unit/test_platform_plans.py): pyinfra <inventory> tests/unit/docker_step.py"""

from pyinfra import host

from tasks import docker
from tasks.settings import Settings, load_defaults, with_defaults

docker.install(Settings.from_data(with_defaults(host.data.dict(), load_defaults())))
