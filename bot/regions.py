"""US states and territories: name and the time zone most of its residents use.

Kept as data. A candidate's own time zone always wins over the state default.
"""

from __future__ import annotations

STATES: dict[str, tuple[str, str]] = {
    "AL": ("Alabama", "America/Chicago"),
    "AK": ("Alaska", "America/Anchorage"),
    "AZ": ("Arizona", "America/Phoenix"),
    "AR": ("Arkansas", "America/Chicago"),
    "CA": ("California", "America/Los_Angeles"),
    "CO": ("Colorado", "America/Denver"),
    "CT": ("Connecticut", "America/New_York"),
    "DE": ("Delaware", "America/New_York"),
    "DC": ("District of Columbia", "America/New_York"),
    "FL": ("Florida", "America/New_York"),
    "GA": ("Georgia", "America/New_York"),
    "HI": ("Hawaii", "Pacific/Honolulu"),
    "ID": ("Idaho", "America/Boise"),
    "IL": ("Illinois", "America/Chicago"),
    "IN": ("Indiana", "America/Indiana/Indianapolis"),
    "IA": ("Iowa", "America/Chicago"),
    "KS": ("Kansas", "America/Chicago"),
    "KY": ("Kentucky", "America/New_York"),
    "LA": ("Louisiana", "America/Chicago"),
    "ME": ("Maine", "America/New_York"),
    "MD": ("Maryland", "America/New_York"),
    "MA": ("Massachusetts", "America/New_York"),
    "MI": ("Michigan", "America/Detroit"),
    "MN": ("Minnesota", "America/Chicago"),
    "MS": ("Mississippi", "America/Chicago"),
    "MO": ("Missouri", "America/Chicago"),
    "MT": ("Montana", "America/Denver"),
    "NE": ("Nebraska", "America/Chicago"),
    "NV": ("Nevada", "America/Los_Angeles"),
    "NH": ("New Hampshire", "America/New_York"),
    "NJ": ("New Jersey", "America/New_York"),
    "NM": ("New Mexico", "America/Denver"),
    "NY": ("New York", "America/New_York"),
    "NC": ("North Carolina", "America/New_York"),
    "ND": ("North Dakota", "America/Chicago"),
    "OH": ("Ohio", "America/New_York"),
    "OK": ("Oklahoma", "America/Chicago"),
    "OR": ("Oregon", "America/Los_Angeles"),
    "PA": ("Pennsylvania", "America/New_York"),
    "RI": ("Rhode Island", "America/New_York"),
    "SC": ("South Carolina", "America/New_York"),
    "SD": ("South Dakota", "America/Chicago"),
    "TN": ("Tennessee", "America/Chicago"),
    "TX": ("Texas", "America/Chicago"),
    "UT": ("Utah", "America/Denver"),
    "VT": ("Vermont", "America/New_York"),
    "VA": ("Virginia", "America/New_York"),
    "WA": ("Washington", "America/Los_Angeles"),
    "WV": ("West Virginia", "America/New_York"),
    "WI": ("Wisconsin", "America/Chicago"),
    "WY": ("Wyoming", "America/Denver"),
    "PR": ("Puerto Rico", "America/Puerto_Rico"),
}

# Offered in the candidate time zone select (Slack allows 100 options).
TIMEZONES: list[tuple[str, str]] = [
    ("America/New_York", "Eastern"),
    ("America/Chicago", "Central"),
    ("America/Denver", "Mountain"),
    ("America/Phoenix", "Arizona (no DST)"),
    ("America/Los_Angeles", "Pacific"),
    ("America/Anchorage", "Alaska"),
    ("Pacific/Honolulu", "Hawaii"),
    ("America/Puerto_Rico", "Atlantic (Puerto Rico)"),
    ("America/Detroit", "Eastern (Michigan)"),
    ("America/Indiana/Indianapolis", "Eastern (Indiana)"),
    ("America/Boise", "Mountain (Idaho)"),
    ("Europe/London", "UK"),
    ("Europe/Berlin", "Central Europe"),
    ("UTC", "UTC"),
]


def default_timezone(region: str | None, fallback: str) -> str:
    if region and region.upper() in STATES:
        return STATES[region.upper()][1]
    return fallback


# First three ZIP digits → state, as inclusive ranges (USPS sectional centers). Used only when a
# lead has a ZIP code but no state.
ZIP3_STATES: list[tuple[int, int, str]] = [
    (5, 5, "NY"), (6, 7, "PR"), (9, 9, "PR"), (10, 27, "MA"), (28, 29, "RI"), (30, 38, "NH"),
    (39, 49, "ME"), (50, 54, "VT"), (55, 55, "MA"), (56, 59, "VT"), (60, 69, "CT"),
    (70, 89, "NJ"), (100, 149, "NY"), (150, 196, "PA"), (197, 199, "DE"), (200, 205, "DC"),
    (206, 219, "MD"), (220, 246, "VA"), (247, 268, "WV"), (270, 289, "NC"), (290, 299, "SC"),
    (300, 319, "GA"), (320, 349, "FL"), (350, 369, "AL"), (370, 385, "TN"), (386, 397, "MS"),
    (398, 399, "GA"), (400, 427, "KY"), (430, 459, "OH"), (460, 479, "IN"), (480, 499, "MI"),
    (500, 528, "IA"), (530, 549, "WI"), (550, 567, "MN"), (569, 569, "DC"), (570, 577, "SD"),
    (580, 588, "ND"), (590, 599, "MT"), (600, 629, "IL"), (630, 658, "MO"), (660, 679, "KS"),
    (680, 693, "NE"), (700, 714, "LA"), (716, 729, "AR"), (730, 749, "OK"), (750, 799, "TX"),
    (800, 816, "CO"), (820, 831, "WY"), (832, 838, "ID"), (840, 847, "UT"), (850, 865, "AZ"),
    (870, 884, "NM"), (885, 885, "TX"), (889, 898, "NV"), (900, 961, "CA"), (967, 968, "HI"),
    (970, 979, "OR"), (980, 994, "WA"), (995, 999, "AK"),
]

# States that span two time zones: ZIP3 prefixes in the state's *other* zone (best effort;
# county lines do not follow ZIP prefixes exactly).
ZIP3_TIMEZONES: dict[str, dict[int, str]] = {
    "FL": {324: "America/Chicago", 325: "America/Chicago"},
    "TX": {798: "America/Denver", 799: "America/Denver", 885: "America/Denver"},
    "TN": {z: "America/New_York" for z in (373, 374, 376, 377, 378, 379)},
    "KY": {z: "America/Chicago" for z in range(420, 425)},
    "IN": {463: "America/Chicago", 464: "America/Chicago", 476: "America/Chicago",
           477: "America/Chicago"},
    "ND": {586: "America/Denver"},
    "SD": {577: "America/Denver"},
    "NE": {693: "America/Denver"},
    "OR": {979: "America/Boise"},
    "ID": {835: "America/Los_Angeles", 838: "America/Los_Angeles"},
}

_STATE_NAMES = {name.casefold(): code for code, (name, _tz) in STATES.items()}


def state_code(raw: str | None) -> str | None:
    """'ma', 'MA' or 'Massachusetts' → 'MA'; None when it is not a known state."""
    if not raw:
        return None
    value = " ".join(raw.split())
    if value.upper() in STATES:
        return value.upper()
    return _STATE_NAMES.get(value.casefold())


def state_for_zip(zip5: str) -> str | None:
    prefix = int(zip5[:3])
    for lo, hi, state in ZIP3_STATES:
        if lo <= prefix <= hi:
            return state
    return None


def timezone_for(state: str | None, zip5: str | None) -> str | None:
    """The time zone of a state, refined by ZIP where the state spans zones; None if unknown."""
    if not state or state not in STATES:
        return None
    if zip5:
        other = ZIP3_TIMEZONES.get(state, {}).get(int(zip5[:3]))
        if other:
            return other
    return STATES[state][1]
