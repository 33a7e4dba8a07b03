"""The Docker step of deploy.py alone, for the @fake platform simulations
(tests/unit/test_platform_plans.py): pyinfra <inventory> tests/unit/docker_step.py"""

from pyinfra import host

from tasks import docker
from tasks.settings import Settings, load_defaults, with_defaults

data = host.data.dict()
docker.install(Settings.from_data(with_defaults(data, load_defaults())), data.get("test_pulled_images", []))
