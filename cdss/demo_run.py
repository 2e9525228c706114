"""`cdss demo` end to end: every step timed, the app served, a walkthrough printed.

Order: simulators and Orthanc (cdss.demo), the models (reused from the registry unless
`--retrain`), the seeded cohort and its first sync (which queues the imaging AI's jobs when its
model is there), the CDW ETL, the SMART app registered with the OpenEMR simulator, the facade
trusting OpenEMR's and the app's tokens, then the server. Ctrl-C (or SIGTERM) unwinds it all:
the server, the sync follower, the imaging worker, the simulators and the Orthanc process.
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from cdss import demo_steps as steps
from cdss.app import create_app
from cdss.demo import DemoStack, demo_stack, seed_and_sync
from cdss.settings import Settings
from fhir_facade.store.sql_store import SqlStore
from simulators.openemr.dashboard import FINDER, dashboard_url

Echo = Callable[[str], None]
INSTALL_ORTHANC = "apt-get install orthanc orthanc-dicomweb"
# the cohort's labs and CTs lie before its index date (400 days ago, so outcomes are known):
# the demo looks back far enough to see them; production keeps the 30/365-day defaults
LOOKBACK_DAYS = 5 * 365


@dataclass(frozen=True, slots=True)
class DemoOptions:
    patients: int = 40
    seed: int = 32
    retrain: bool = False
    train_size: int = 2000
    imaging: bool = False  # train the tiny imaging model when none is promoted


class Clock:
    """Progress lines: `[  12.3 s] step ... done (4.1 s)`."""

    def __init__(self, echo: Echo) -> None:
        self.echo = echo
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def note(self, line: str) -> None:
        self.echo(f"[{self.elapsed():6.1f} s] {line}")

    @contextmanager
    def step(self, what: str) -> Iterator[list[str]]:
        """Yields a list the step may append its outcome to."""
        self.echo(f"[{self.elapsed():6.1f} s] {what} ...")
        began, outcome = time.monotonic(), list[str]()
        yield outcome
        detail = f": {outcome[0]}" if outcome else ""
        self.echo(f"[{self.elapsed():6.1f} s]   done in {time.monotonic() - began:.1f} s{detail}")


def _terminate(_sig: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM unwinds like Ctrl-C: every context manager cleans up


def run_demo(settings: Settings, options: DemoOptions, echo: Echo = print) -> None:
    signal.signal(signal.SIGTERM, _terminate)
    clock = Clock(echo)
    base = f"http://{settings.host}:{settings.port}"
    try:
        with ExitStack() as resources:
            with clock.step("starting the OpenEMR and SENAITE simulators and Orthanc") as out:
                stack = resources.enter_context(
                    demo_stack(settings.data_dir, settings.host, settings.port)
                )
                out.append(stack.orthanc_url or "Orthanc not installed")
            resources.callback(clock.note, "stopping the simulators and Orthanc")
            _run(stack, settings, options, clock, base)
    except KeyboardInterrupt:
        pass  # Ctrl-C while starting (the server takes it itself once it runs)
    except Exception as exc:
        if not isinstance(exc.__context__, KeyboardInterrupt):
            raise
        # Ctrl-C, then something failed while unwinding (a half-done request, a server thread):
        # the user asked to stop and everything is stopping, so say what and stop (exit 0).
        clock.note(f"while stopping: {type(exc).__name__}: {exc}")
    clock.note("stopped: server, sync, simulators and Orthanc are down")


def _environment(stack: DemoStack, base: str) -> dict[str, str]:
    """What the app's settings classes read: this run's sources, store, CDW and data dir."""
    env = {
        "CDSS_DATA_DIR": str(stack.data_dir),
        "CDSS_DATABASE_URL": stack.database_url,
        "CDSS_CDW_DATABASE_URL": f"sqlite:///{stack.data_dir / 'cdw.db'}",
        "CDSS_CDW_PSEUDONYM_KEY": secrets.token_hex(32),  # fresh data, fresh key
        "CDSS_OPENEMR_URL": stack.openemr_url,
        "CDSS_SENAITE_URL": stack.senaite_url,
        "CDSS_DICOMWEB_PUBLIC_URL": f"{base}/dicom-web",
    }
    if stack.orthanc_url and stack.orthanc_auth:
        env |= {
            "CDSS_ORTHANC_URL": stack.orthanc_url,
            "CDSS_ORTHANC_USER": stack.orthanc_auth[0],
            "CDSS_ORTHANC_PASSWORD": stack.orthanc_auth[1],
        }
    return env


def _models(options: DemoOptions, clock: Clock, has_pacs: bool) -> bool:
    """Risk model and imaging model: reuse promoted ones, else train. True: imaging AI on."""
    with clock.step("risk model (oncology-risk)") as out:
        found, why = (None, "--retrain") if options.retrain else steps.usable(steps.RISK_MODEL)
        if not found:
            clock.echo(f"  training it ({why})")
        out.append(
            f"reusing {found}"
            if found
            else "trained " + steps.train_risk(options.train_size, options.seed)
        )
    if not has_pacs:
        clock.echo(f"  imaging AI off: no Orthanc ({INSTALL_ORTHANC})")
        return False
    retrain = options.retrain and options.imaging
    found, why = (None, "--retrain") if retrain else steps.usable(steps.IMAGING_MODEL)
    if found:
        clock.echo(f"  imaging model: reusing {found}")
        return True
    if not options.imaging:
        clock.echo(
            f"  imaging AI off ({why}); `cdss demo --train-imaging` "
            "trains the tiny one first (many minutes on a CPU), `cdss train imaging --promote` "
            "the real one"
        )
        return False
    with clock.step("imaging model (lung-nodule-ct, tiny configuration)") as out:
        try:
            out.append(steps.train_imaging(Path(os.environ["CDSS_DATA_DIR"]) / "train-imaging.log"))
        except RuntimeError as exc:
            out.append(f"skipped: {exc}")
            return False
    return True


def _run(
    stack: DemoStack, settings: Settings, options: DemoOptions, clock: Clock, base: str
) -> None:
    if stack.orthanc_missing:
        clock.echo(
            f"  Orthanc is not installed ({stack.orthanc_missing}): no imaging. "
            f"Install it with: {INSTALL_ORTHANC}"
        )
    os.environ.update(_environment(stack, base))
    imaging = _models(options, clock, stack.orthanc_url is not None)
    if imaging:
        from models import jobs

        os.environ["CDSS_IMAGING_ENABLED"] = "true"
        jobs.install(True)  # the first sync queues a job per CT study
    with clock.step(f"seeding {options.patients} synthetic patients and syncing them") as out:
        summary, runner = seed_and_sync(
            stack, patients=options.patients, seed_value=options.seed, public_base=base
        )
        out.append(
            f"{summary.patients} patients, {summary.samples} lab samples, "
            f"{summary.ct_studies} CT studies"
        )
    with clock.step("CDW ETL (FHIR -> OMOP, pseudonymised)") as out:
        out.append(
            steps.run_etl(
                stack.database_url,
                os.environ["CDSS_CDW_DATABASE_URL"],
                os.environ["CDSS_CDW_PSEUDONYM_KEY"].encode(),
            )
        )
    iss = f"{stack.openemr_url}/apis/default/fhir"
    with clock.step("registering the SMART app with the OpenEMR simulator") as out:
        client = steps.register_smart_app(iss, base)
        os.environ.update(
            steps.smart_environment(
                client,
                iss,
                base,
                stack.data_dir,
                (stack.orthanc_url, stack.orthanc_auth)
                if stack.orthanc_url and stack.orthanc_auth
                else None,
            )
        )
        out.append(f"client {client['client_id'][:8]}…")
    secure = steps.auth_wanted()
    security = steps.facade_security(stack.openemr_url, base, client) if secure else None
    demo_settings = settings.model_copy(
        update={
            "database_url": stack.database_url,
            "data_dir": stack.data_dir,
            "cds_clients": [*settings.cds_clients, *_cds_clients(base)],
            "cds_creatinine_window_days": LOOKBACK_DAYS,
            "cds_imaging_summary_days": LOOKBACK_DAYS,
        }
    )
    store = SqlStore(stack.database_url)
    try:
        featured = steps.featured_patient(store, summary.truth_file) if summary.truth_file else None
        with clock.step("starting the app (facade, CDS Hooks, SMART app, imaging worker)"):
            app = create_app(demo_settings, security=security)
        _serve(app, demo_settings, stack, clock, featured, runner, store, imaging, secure)
    finally:
        store.close()


def _cds_clients(base: str) -> list[Any]:
    from cdss.settings import CdsClient

    return [CdsClient.model_validate(c) for c in steps.cds_clients(base)]


def _serve(
    app: Any,
    settings: Settings,
    stack: DemoStack,
    clock: Clock,
    featured: steps.Featured | None,
    runner: Any,
    store: SqlStore,
    imaging: bool,
    secure: bool,
) -> None:
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level.lower(),
            log_config=None,
            access_log=False,
        )
    )
    stop = threading.Event()
    follower = threading.Thread(target=runner.follow, args=(stop,), daemon=True, name="sync")
    follower.start()

    def announce() -> None:
        while not server.started and not stop.is_set():
            stop.wait(0.05)
        if stop.is_set():
            return
        for line in walkthrough(settings, stack, featured, secure):
            clock.echo(line)
        clock.echo(f"demo ready in {clock.elapsed():.1f} s. Ctrl-C stops everything.")
        if imaging:
            _follow_jobs(store, clock, stop)

    watcher = threading.Thread(target=announce, daemon=True, name="demo-announce")
    watcher.start()
    try:
        server.run()
    finally:
        clock.note("stopping the sync follower and the imaging worker")
        stop.set()
        follower.join(timeout=10)
        watcher.join(timeout=5)


def _follow_jobs(store: SqlStore, clock: Clock, stop: threading.Event) -> None:
    """One line when the imaging AI has gone through the synced studies."""
    from models import jobs

    began = time.monotonic()
    while not stop.wait(2.0):
        counts = jobs.counts(store.writer)
        pending = counts.get("queued", 0) + counts.get("running", 0)
        if pending == 0:
            clock.echo(
                f"[{clock.elapsed():6.1f} s] imaging AI: {counts.get('done', 0)} studies analysed, "
                f"{counts.get('failed', 0)} failed ({time.monotonic() - began:.1f} s after start)"
            )
            return


def walkthrough(
    settings: Settings, stack: DemoStack, featured: steps.Featured | None, secure: bool
) -> list[str]:
    base = f"http://{settings.host}:{settings.port}"
    auth = (
        "tokens required (OpenEMR's and the SMART app's; CDSS_FHIR_AUTH=disabled turns it off)"
        if secure
        else "DISABLED (CDSS_FHIR_AUTH=disabled, loopback only)"
    )
    lines = [
        "",
        "CDSS demo",
        f"  FHIR R4 facade    {base}/fhir/metadata   auth: {auth}",
        f"  CDS Hooks         {base}/cds-services   (JWT clients: the SMART app is trusted)",
        f"  health            {base}/healthz  {base}/readyz   metrics {base}/metrics",
        f"  model cards       {base}/models",
        f"  OpenEMR (sim)     {stack.openemr_url}{FINDER}   (login admin / pass)",
        f"  SENAITE (sim)     {stack.senaite_url}/@@API/senaite/v1  (admin / admin)",
        f"  Orthanc           {stack.orthanc_url or 'not installed: ' + INSTALL_ORTHANC}",
        f"  data              {stack.data_dir}",
        f"  look-back         kidney function and prior imaging {LOOKBACK_DAYS} days "
        "(the cohort's records predate its index date)",
    ]
    if stack.orthanc_url:
        lines.append(
            f"                    its user and password: {stack.data_dir}/orthanc/orthanc.json"
        )
    if featured is None:
        return [*lines, "  (no patient found for the walkthrough)"]
    row = stack.emr_app.state.store.patient_by_uuid(featured.patient_id)
    pid = row["pid"] if row else "?"
    egfr = (
        f"eGFR {featured.egfr:g} mL/min/1.73m² ({featured.egfr_date})"
        if featured.egfr is not None
        else "no eGFR on file"
    )
    prior = (
        f"prior chest CT {featured.study_date}"
        + (" (a nodule in the cohort's truth)" if featured.nodule else "")
        if featured.study_id
        else "no prior CT"
    )
    return [
        *lines,
        "",
        f"Walkthrough: {featured.name}, MRN {featured.mrn}: {egfr}; {prior}",
        f"  1. Open the patient's dashboard: {dashboard_url(stack.openemr_url, pid)}",
        f'  2. Under "SMART Enabled Apps" click "{steps.APP_NAME}"; log in as admin / pass and '
        "approve: the app opens on the patient.",
        '  3. Orders: pick "CT Chest W contrast IV": the cards warn about the kidney function '
        "and show the prior study's AI finding; accept the suggestion or override with a reason, "
        "then sign.",
        "  4. Imaging: open the prior CT; the AI finding is ringed on its slice (when the imaging "
        "AI has run; a line below says when).",
        "  5. Risk: the lung-cancer risk with its drivers and the model card.",
        f"  Every access is audited (AuditEvent in the facade: {base}/fhir/AuditEvent, admins).",
    ]
