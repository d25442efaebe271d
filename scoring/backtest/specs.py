"""Engine specs as JSON and back: a backtest freezes the definitions it simulates. Pure."""

import hashlib
import json

from scoring import engine


def icp_to_json(icp: engine.IcpSpec) -> dict:
    return {
        "version": icp.version,
        "criteria": [
            {
                "name": c.name,
                "attribute": c.attribute,
                "values": list(c.values),
                "min_value": c.min_value,
                "max_value": c.max_value,
                "points": c.points,
                "is_exclusion": c.is_exclusion,
            }
            for c in icp.criteria
        ],
        "tiers": [icp.tier_a_min_points, icp.tier_b_min_points, icp.tier_c_min_points],
    }


def icp_from_json(data: dict) -> engine.IcpSpec:
    tier_a, tier_b, tier_c = data["tiers"]
    return engine.IcpSpec(
        version=data["version"],
        criteria=tuple(
            engine.Criterion(
                name=c["name"],
                attribute=c["attribute"],
                values=tuple(c["values"]),
                min_value=c["min_value"],
                max_value=c["max_value"],
                points=c["points"],
                is_exclusion=c["is_exclusion"],
            )
            for c in data["criteria"]
        ),
        tier_a_min_points=tier_a,
        tier_b_min_points=tier_b,
        tier_c_min_points=tier_c,
    )


def scoring_to_json(spec: engine.ScoringSpec) -> dict:
    return {
        "version": spec.version,
        "half_life_days": spec.half_life_days,
        "rules": {kind: [rule.weight, rule.daily_cap] for kind, rule in sorted(spec.rules.items())},
        "floor": spec.floor,
        "cap": spec.cap,
        "personal_email_penalty": spec.personal_email_penalty,
        "competitor_domains": sorted(spec.competitor_domains),
        "competitor_penalty": spec.competitor_penalty,
        "bands": [spec.band_1, spec.band_2, spec.band_3],
    }


def scoring_from_json(data: dict) -> engine.ScoringSpec:
    band_1, band_2, band_3 = data["bands"]
    return engine.ScoringSpec(
        version=data["version"],
        half_life_days=data["half_life_days"],
        rules={
            kind: engine.KindRule(weight=weight, daily_cap=cap)
            for kind, (weight, cap) in data["rules"].items()
        },
        floor=data["floor"],
        cap=data["cap"],
        personal_email_penalty=data["personal_email_penalty"],
        competitor_domains=frozenset(data["competitor_domains"]),
        competitor_penalty=data["competitor_penalty"],
        band_1=band_1,
        band_2=band_2,
        band_3=band_3,
    )


def fingerprint(data: dict) -> str:
    """A stable digest of a spec's JSON: tells whether a draft was edited since a backtest."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
