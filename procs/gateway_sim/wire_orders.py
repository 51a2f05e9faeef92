"""The long order messages for server versions 157..178: openOrder, orderStatus, completedOrder, execDetails.

Pure encoders, field for field in the order of IB's own decoder (ibapi/orderdecoder.py) at the session's
negotiated `version`; a missing or extra field makes ib_async drop the message silently and misaligns ibapi, so
each layout is pinned at every version by round-trip tests. No sockets.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from procs.gateway_sim.wire import (
    MIN_SERVER_VER_AUTO_CANCEL_PARENT,
    MIN_SERVER_VER_DURATION,
    MIN_SERVER_VER_FA_PROFILE_DESUPPORT,
    MIN_SERVER_VER_PEGBEST_PEGMID_OFFSETS,
    MIN_SERVER_VER_PENDING_PRICE_REVISION,
    MIN_SERVER_VER_POST_TO_ATS,
    SERVER_VERSION,
    Field,
    check_version,
    contract_fields_11,
    frame,
)

if TYPE_CHECKING:
    from procs.gateway_sim.contracts import SimContract
    from procs.gateway_sim.orders import SimExecution, SimOrder


def order_status(o: SimOrder) -> bytes:
    remaining = max(o.total_qty - o.filled, Decimal(0)) if o.status not in ("Cancelled", "Inactive") else 0
    return frame(
        (3, o.order_id, o.status, o.filled, remaining, o.avg_fill_price, o.perm_id, 0)
        + (o.last_fill_price, o.client_id, o.why_held, 0.0)
    )


def _order_head(o: SimOrder) -> list[Field]:
    aux = None if o.order_type == "TRAIL" else o.aux_price
    return [o.action, o.total_qty, o.order_type, o.lmt_price, aux, o.tif, o.oca_group, o.account, "", 0]


def _fa_profile(version: int) -> list[Field]:
    """The deprecated faProfile after faPercentage, gone from 177."""
    return [""] if version < MIN_SERVER_VER_FA_PROFILE_DESUPPORT else []


def _peg_best_mid(version: int) -> list[Field]:
    """minTradeQty, minCompeteSize, competeAgainstBestOffset, midOffsetAtWhole, midOffsetAtHalf: from 170."""
    return ["", "", "", "", ""] if version >= MIN_SERVER_VER_PEGBEST_PEGMID_OFFSETS else []


def open_order(o: SimOrder, c: SimContract, *, version: int = SERVER_VERSION) -> bytes:
    """127 fields at 178 (120 at 157): every optional block empty (no legs, scale, hedge, algo, conditions)."""
    check_version(version)
    f: list[Field] = [5, o.order_id, *contract_fields_11(c)]
    f += _order_head(o)
    f += [o.order_ref, o.client_id, o.perm_id, 0, 0, 0.0, "", "", "", "", ""]  # ..sharesAllocation, fa*
    f += _fa_profile(version)
    f += ["", "", "", "", "", 0, "", "", 0]  # modelCode .. auctionStrategy
    f += [
        "",
        "",
        "",
        "",
        "",
        0,
        0,
        0,
        0,
        "",
        3,
        0,
        0,
        "",
        0,
        0,
        "",
        0,
        "",
        "",
    ]  # .. volatilityType, DN type/aux
    trail = o.order_type == "TRAIL"
    f += [
        0,
        0,
        o.aux_price if trail else "",
        o.trailing_pct if trail else "",
        "",
        "",
        "",
    ]  # continuousUpdate ..
    f += [0, 0, 0]  # numLegs, numOrderComboLegs, numSmartComboParams
    f += ["", "", ""]  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement (empty: no scale block)
    f += [""]  # hedgeType (empty: no hedgeParam)
    f += [0, "", "", 0, 0]  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld, dncPresent
    f += [""]  # algoStrategy (empty: no params)
    f += [0, 0, o.status, "", "", "", "", "", "", "", "", ""]  # solicited, whatIf, status, 9 margin fields
    f += ["", "", "", "", "", 0, 0]  # commission, min/max commission, currency, warning, randomize size/price
    f += [0]  # numConditions
    f += ["", "", "", "", "", "", "", 0]  # adjusted-order fields
    f += [
        "",
        "",
        "",
        "",
        0,
        0,
        "",
        0,
    ]  # softDollarTier x3, cashQty, dontUseAutoPrice.., isOms.., discr.., usePM
    if version >= MIN_SERVER_VER_DURATION:
        f.append("")  # duration
    if version >= MIN_SERVER_VER_POST_TO_ATS:
        f.append(0)  # postToAts
    if version >= MIN_SERVER_VER_AUTO_CANCEL_PARENT:
        f.append(0)  # autoCancelParent
    f += _peg_best_mid(version)
    return frame(f)


def completed_order(
    o: SimOrder, c: SimContract, completed_time: str, *, version: int = SERVER_VERSION
) -> bytes:
    """96 fields at 178 (92 at 157); no orderId or clientId (IB identifies completed orders by permId)."""
    check_version(version)
    f: list[Field] = [101, *contract_fields_11(c)]
    f += _order_head(o)
    f += [o.order_ref, o.perm_id, 0, 0, 0.0, "", "", "", ""]  # orderRef .. faPercentage
    f += _fa_profile(version)
    f += ["", "", "", "", "", 0, "", ""]  # modelCode .. exemptCode
    f += ["", "", "", "", "", "", 0, 0, "", 0, 0, "", 0, "", ""]  # startingPrice .. DN type/aux
    f += [0, 0, "", "", ""]  # continuousUpdate, referencePriceType, trailStop, trailingPct, comboLegsDescrip
    f += [0, 0, 0, "", "", "", ""]  # legs/params counts, scale fields, hedgeType
    f += ["", "", 0, 0]  # clearingAccount, clearingIntent, notHeld, dncPresent
    f += [""]  # algoStrategy
    f += [0, o.status, 0, 0]  # solicited, status, randomizeSize, randomizePrice
    f += [0]  # numConditions
    f += ["", "", "", 0, 0, "", o.filled, 0, 0, "", 0, 0, 0]  # trailStopPrice .. parentPermId
    f += [completed_time, o.status]  # completedTime, completedStatus
    f += _peg_best_mid(version)
    return frame(f)


def exec_details(
    req_id: int, e: SimExecution, c: SimContract, time_text: str, *, version: int = SERVER_VERSION
) -> bytes:
    """req_id -1 for a live fill; the trailing pendingPriceRevision is required from 178 and absent below."""
    f: list[Field] = [
        11,
        req_id,
        e.order_id,
        *contract_fields_11(c, exchange=e.exchange),
        e.exec_id,
        time_text,
    ]
    f += [e.account, e.exchange, e.side, e.shares, e.price, e.perm_id, e.client_id, 0]
    f += [
        e.cum_qty,
        e.avg_price,
        e.order_ref,
        "",
        "",
        "",
        2,
    ]  # .. evRule, evMultiplier, modelCode, lastLiquidity
    if check_version(version) >= MIN_SERVER_VER_PENDING_PRICE_REVISION:
        f.append(0)
    return frame(f)
