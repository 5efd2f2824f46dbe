"""Market development funds, the fund journey: `mdf-fund-{partner_id}-{period}`.

It warns the partner before the fund's unreserved balance expires, then writes the expiry.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.journeys import CHANGE_COVERAGE, PROGRESS, Coverage, shifted
    from journeys.mdf.domain import (
        JOURNEY,
        LEGACY_ACTIVITY_NAMES,
        ExpireFundInput,
        ExpireFundResult,
        FundBalance,
        FundBalanceInput,
        MdfActivity,
        MdfFundInput,
        MdfFundProgress,
        money,
    )
    from workflows.kit import JourneyKit


@workflow.defn
class MdfFundWorkflow:
    """`mdf-fund-{partner_id}-{period}`: warnings before the fund's unreserved balance expires, then
    the expiry entry ("use it or lose it")."""

    @workflow.init
    def __init__(self, inp: MdfFundInput) -> None:
        self._kit = JourneyKit(JOURNEY, inp.partner_id, inp.coverage, LEGACY_ACTIVITY_NAMES, context=self._context)
        self._inp = inp
        self._warned: list[float] = []
        self._expired: int | None = None

    @workflow.signal(name=CHANGE_COVERAGE)
    def change_coverage(self, coverage: Coverage) -> None:
        self._kit.apply_coverage(coverage, "open" if self._expired is None else "expired")

    @workflow.query(name=PROGRESS)
    def progress(self) -> MdfFundProgress:
        return MdfFundProgress(
            fund_id=self._inp.fund_id,
            period=self._inp.period,
            expires_at=self._inp.expires_at,
            warned=self._warned,
            expired_minor=self._expired,
        )

    @workflow.run
    async def run(self, inp: MdfFundInput) -> MdfFundProgress:
        policy = await self._kit.load_policy(inp.policy_version)
        self._kit.upsert("open")
        for offset in sorted(policy.mdf.expiry_warning_days, reverse=True):
            at = shifted(inp.expires_at, -policy.days(offset))
            if workflow.now() >= at:
                continue  # created after this warning's time
            await self._kit.wait_until(
                lambda: False, at, summary=f"expiry warning ({offset:g} days left)", waiting_for="the warning"
            )
            balance = await self._kit.activity(
                MdfActivity.FUND_BALANCE,
                FundBalanceInput(fund_id=inp.fund_id),
                FundBalance,
                summary="read the fund's available balance",
            )
            if balance.available_minor > 0:
                self._warned.append(offset)
                await self._kit.notify(
                    "funds_expiring",
                    ["partner"],
                    step=f"expiry_warning:{offset:g}",
                    available=money(balance.available_minor, inp.currency),
                    days_left=offset,
                )
        await self._kit.wait_until(
            lambda: False,
            inp.expires_at,
            summary="unreserved funds expire",
            waiting_for="the end of the period and its grace",
        )
        result = await self._kit.activity(
            MdfActivity.EXPIRE_FUND,
            ExpireFundInput(idempotency_key=self._kit.key("expired"), fund_id=inp.fund_id, at=workflow.now()),
            ExpireFundResult,
            summary="expire the fund's unreserved balance",
        )
        self._expired = result.expired_minor
        self._kit.upsert("expired")
        if result.expired_minor > 0:
            await self._kit.notify(
                "funds_expired",
                ["partner"] + (["cam"] if self._kit.has_cam() else []),
                expired=money(result.expired_minor, inp.currency),
            )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.progress()

    def _context(self) -> dict[str, Any]:
        return {
            "partner_name": self._inp.partner_name,
            "period": self._inp.period,
            "expires_on": self._inp.expires_at.date().isoformat(),
        }
