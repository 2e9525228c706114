"""Order routing settings (CDSS_* variables), apart from cdss/settings.py so the orders package
can be configured and tested on its own. The SENAITE URL and credentials are the sync's own
variables (CDSS_SENAITE_URL/USER/PASSWORD): one LIS, one account."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class OrderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDSS_", env_file=".env", extra="ignore")

    orders_enabled: bool = Field(
        False, description="Validate and route signed ServiceRequests posted to the facade"
    )
    orders_worker: bool = Field(False, description="Run the routing worker inside `cdss serve`")
    senaite_url: str | None = Field(None, description="SENAITE site, e.g. https://lis/senaite")
    senaite_user: str = "admin"
    senaite_password: SecretStr = SecretStr("admin")
    orders_senaite_client_id: str = Field("OPD", description="SENAITE ClientID orders go to")
    orders_senaite_contact: str | None = Field(
        None, description="Contact UID of the ordering client; default: its first contact"
    )
    orders_senaite_sample_type: str = Field("Serum", description="SampleType title of lab orders")
    orders_worklists_dir: Path | None = Field(
        None, description="Folder the Orthanc Modality Worklists plugin serves (.wl files)"
    )
    orders_station_aet: str = Field("", description="ScheduledStationAETitle of worklist items")
    orders_retry_base_s: float = Field(1.0, gt=0, description="First retry delay (doubles)")
    orders_retry_max_s: float = Field(60.0, gt=0, description="Longest retry delay")
    orders_poll_s: float = Field(1.0, gt=0, description="Worker loop period")
    orders_status_poll_s: float = Field(
        5.0, ge=0, description="How often routed orders are checked for status back"
    )
    orders_batch: int = Field(100, ge=1, description="Due orders taken per round")
    orders_concurrency: int = Field(8, ge=1, description="Deliveries in flight at once")
    openemr_url: str | None = Field(None, description="OpenEMR base, e.g. https://emr")
    base_url: str | None = Field(None, description="Public base of the app (links in reports)")
    reports_export: dict[str, str] = Field(
        default_factory=dict,
        description="DiagnosticReport category code -> OpenEMR document category path, JSON: "
        '{"RAD": "/Categories/Imaging"}; empty: no export',
    )
    reports_openemr_client_id: str = ""
    reports_openemr_client_secret: SecretStr | None = None
    reports_openemr_user: str = "admin"
    reports_openemr_password: SecretStr = SecretStr("pass")
    orders_timeout_s: float = Field(10.0, gt=0, description="HTTP timeout towards SENAITE")
