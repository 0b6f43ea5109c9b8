from __future__ import annotations

from offline_service import Kind, parse_response
from tests.factories import World


def test_activation_round_trip(world: World) -> None:
    lic = world.license(activations=1)
    outcome = world.process(world.machine().request(Kind.ACTIVATION, world.product.id, license_key=lic.key))
    assert outcome.ok, outcome
    response = parse_response(outcome.response.encode(), world.keyring.public_keys())
    assert response.activation_id == outcome.activation_id
    assert response.used_activations == 1
