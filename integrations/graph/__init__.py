"""Microsoft Graph calendars: app-only msal auth, calendarView/delta reads, getSchedule, sync."""

from integrations.graph.auth import MsalCredential, StaticTokenCredential, TokenCredential
from integrations.graph.client import CallStats, DeltaSpec, GraphClient
from integrations.graph.errors import (
    GraphAuthError,
    GraphConfigError,
    GraphError,
    GraphRequestError,
    GraphSyncReset,
    GraphThrottled,
    GraphUnavailable,
)
from integrations.graph.factory import client_from_settings
from integrations.graph.slots import business_days_window, free_slots, local_day
from integrations.graph.types import DeltaResult, GraphEvent, Interval, ScheduleInfo, WorkingHours

__all__ = [
    "CallStats",
    "DeltaResult",
    "DeltaSpec",
    "GraphAuthError",
    "GraphClient",
    "GraphConfigError",
    "GraphError",
    "GraphEvent",
    "GraphRequestError",
    "GraphSyncReset",
    "GraphThrottled",
    "GraphUnavailable",
    "Interval",
    "MsalCredential",
    "ScheduleInfo",
    "StaticTokenCredential",
    "TokenCredential",
    "WorkingHours",
    "business_days_window",
    "client_from_settings",
    "free_slots",
    "local_day",
]
