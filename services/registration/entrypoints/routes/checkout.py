"""/v1/checkout/*: what the checkout system may ask (its own service token, CONTRACT 6.1).

The token is checked before anything is read: the operator token or a partner
key answers 403 for any licence, known or not, so the route tells them nothing.
"""

from __future__ import annotations

from fastapi import APIRouter, Path

from services.registration.entrypoints.dependencies import CheckoutDep, ServicesDep
from services.registration.entrypoints.schemas import CheckoutPartner, CheckoutPartnerOfRecord

router = APIRouter(prefix="/v1/checkout", tags=["checkout"])


@router.get("/entitlements/{license_key}/partner-of-record", response_model=CheckoutPartnerOfRecord)
async def partner_of_record(
    _: CheckoutDep, svc: ServicesDep, license_key: str = Path(max_length=100)
) -> CheckoutPartnerOfRecord:
    """Whom to steer a renewing customer to: the active partner of record, or null (direct).

    `404 unknown_license_key`. No customer data, nothing of other entitlements.
    """
    found = await svc.entitlements.steer_back(license_key)
    partner = found.partner
    return CheckoutPartnerOfRecord(
        license_key=found.license_key,
        partner=CheckoutPartner(
            display_name=partner.display_name,
            seller_code=partner.seller_code,
            website=partner.branding.website,
            phone=partner.branding.phone,
            renewal_mode=partner.renewal_mode_at(found.at),
        )
        if partner is not None
        else None,
    )
