"""The API resource is `ClientConfig` as Dagster configures it: same settings, same defaults."""

import dataclasses

from etl_contacts.defs.resources import ExpressChatResource
from etl_contacts.source import ClientConfig


def test_the_resource_passes_every_setting_it_has_and_keeps_the_clients_defaults() -> None:
    resource = ExpressChatResource(base_url="https://api.example", token="a" * 24, max_attempts=3)
    built = resource.client_config()
    assert built == dataclasses.replace(
        ClientConfig(base_url="https://api.example", token="a" * 24), max_attempts=3
    )
    assert built.token == "a" * 24  # kept out of repr, not out of the config
