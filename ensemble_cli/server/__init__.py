"""`ensemble serve`: every ensemble as a model behind an OpenAI-compatible endpoint (FastAPI + uvicorn).

``ensembles`` loads the served run configs, ``requests`` maps a chat request onto one, ``runner`` runs
it through a ``Session``, ``responses`` and ``streaming`` shape the answer, ``app`` wires the routes
and limits, ``serve`` runs uvicorn with the bind checks and a graceful SIGTERM.
"""

from .app import Limits, create_app
from .served import Ensemble, load_ensembles

__all__ = ["Ensemble", "Limits", "create_app", "load_ensembles"]
