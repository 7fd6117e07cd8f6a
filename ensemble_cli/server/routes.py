"""The models a request may name: a served ensemble by name, or a routed name ``ENSEMBLE@PROVIDER/MODEL``.

A routed name is parsed and checked against the server's ``Gate`` (a provider it has a key for, a local
model it lists by name) before anything is built; the routed ensemble is then validated like a file of
the server's own. The most recent ``KEPT`` routed ensembles are kept, so that a client repeating one name
does not rebuild it; they hold no open connection (each request's registry is its own).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from ..errors import AuthError, CapabilityError, ConfigError
from ..routing import Gate, is_routed, parse
from ..session import Session
from .errors import ApiError
from .requests import request_name
from .served import Ensemble, routed

KEPT = 64


class Models:
    """The served ensembles, and the routed ones built from them on request."""

    def __init__(self, ensembles: dict[str, Ensemble], gate: Gate, kept: int = KEPT) -> None:
        self.ensembles = ensembles
        self.gate = gate
        self.kept = kept
        self._routed: OrderedDict[str, Ensemble] = OrderedDict()

    def find(self, name: str, unknown_status: int = 400) -> Ensemble:
        """The ensemble ``name`` stands for; an ``ApiError`` naming ``model`` otherwise (``unknown_status``
        for a name that is neither served nor routed)."""
        served = self.ensembles.get(name)
        if served is not None:
            return served
        if not is_routed(name):
            raise ApiError(unknown_status, f"unknown model '{name}'; choose one of {', '.join(self.ensembles)}, or "
                           "route one as ENSEMBLE@PROVIDER/MODEL (GET /v1/models says how)",
                           param="model", code="model_not_found")
        kept = self._routed.get(name)
        if kept is not None:
            self._routed.move_to_end(name)
            return kept
        made = self._build(name, unknown_status)
        self._routed[name] = made
        while len(self._routed) > self.kept:
            self._routed.popitem(last=False)
        return made

    def _build(self, name: str, unknown_status: int) -> Ensemble:
        try:
            route = parse(name)
            base = self.ensembles.get(route.ensemble)
            if base is None:
                raise ApiError(unknown_status, f"model '{name}': no ensemble '{route.ensemble}' to route; choose one "
                               f"of {', '.join(self.ensembles)}", param="model", code="model_not_found")
            made = routed(base, route, self.gate.admit(route))
        except ConfigError as exc:
            raise ApiError(400, exc.text(request_name), param="model", code="invalid_route") from None
        session = Session(made.config, registry=made.registry_for(made.config))
        try:  # every member bound and checked for what the strategy needs, before a request relies on it
            session.prepare(made.strategy)
        except (ConfigError, CapabilityError, AuthError) as exc:
            raise ApiError(400, f"model '{name}': {exc.text(request_name)}", param="model",
                           code="invalid_route") from None
        finally:
            session.close()
        return made

    def card(self, ensemble: Ensemble) -> dict[str, Any]:
        created = int(ensemble.path.stat().st_mtime) if ensemble.path.exists() else 0
        card = {"id": ensemble.name, "object": "model", "created": created, "owned_by": "ensemble",
                "strategy": ensemble.strategy}
        if ensemble.route is None:
            card["routed_as"] = f"{ensemble.name}@PROVIDER/MODEL"
        else:
            card["routed_from"] = ensemble.route.ensemble
        return card

    def listing(self) -> dict[str, Any]:
        """``GET /v1/models``: every served ensemble, and how to route one (the ``routing`` object)."""
        first = next(iter(self.ensembles), None)
        return {"object": "list", "data": [self.card(e) for e in self.ensembles.values()],
                "routing": self.gate.note(first)}
