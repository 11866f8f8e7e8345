"""Composition root of eligibility."""

from pathlib import Path

from ejsika_contracts import ELIGIBILITY
from ejsika_runtime.service import Service
from ejsika_runtime.settings import Settings

from . import api
from . import rule_book, rule_change, rule_sets_api
from . import inputs, review
from . import figures_api, quotas, quotas_api, what_if_api


class EligibilitySettings(Settings):
    http_port: int = 8003
    review_batch: int = 2_000  # households reassessed per transaction as time passes
    quota_allocation_interval_s: float = 2.0  # how soon a freed place or a new eligible family is allocated



settings = EligibilitySettings()
service = Service("eligibility", settings, Path(__file__).parent / "migrations")
inputs.consume(service)  # the registry's and monitoring's topics: inputs kept current, reassessed
service.background(review.review_loop(lambda: service.pool, service.outbox, settings.review_batch))
service.emits(ELIGIBILITY)
service.router.include_router(api.routes(service))
service.router.include_router(rule_sets_api.routes(service))
service.background(lambda: rule_book.seed_defaults(service.pool))  # the shipped rule sets, once stored
service.background(rule_change.worker(lambda: service.pool, service.outbox))  # rule changes, resumed after a restart
service.background(lambda: quotas.allocation_loop(lambda: service.pool, service.outbox,
                                                   settings.quota_allocation_interval_s))
service.router.include_router(quotas_api.routes(service))
service.router.include_router(figures_api.routes(service))
service.router.include_router(what_if_api.routes(service))
app = service.app()
