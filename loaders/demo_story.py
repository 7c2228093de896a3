"""A year of case management in the demo area, made through the operations the service's users call: each
locality's team registers its practitioners, finds people, screens and enrols them, reviews and discharges."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

from .synth import jean

ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
YEAR_START = date(2025, 9, 1)  # the first enrolments, so that some have run their 12 months by the extract date
LAST_ENROLMENT = date(2026, 10, 16)
END = date(2026, 10, 31)  # the first extract's date: the story's year ends here, the next extract follows it
DECLINE_EVERY = 7  # one person in seven offered case management declines
UNREVIEWED_EVERY = 4  # one plan in four has its latest review not yet done: overdue
DECLINE_REASONS = ("Prefers to manage with her or his family's support", "Does not want more visits at home",
                   "Already well supported by the district nursing team")
LOCALITIES = (("Y9L01", "North locality"), ("Y9L02", "South locality"))
# (role code, given, family, identifier system, identifier, telephone) of each locality's team
TEAMS = (
    (("case-manager", "Anne", "Khan", "nmc", "81A1234E", "01632 960100"),
     ("community-matron", "Grace", "Obi", "nmc", "84B5678E", "01632 960101"),
     ("social-worker", "Tom", "Reid", "hcpc", "SW112233", "01632 960102"),
     ("pharmacist", "Priya", "Shah", "gphc", "2071234", "01632 960103")),
    (("case-manager", "Mark", "Ellis", "nmc", "90C2468E", "01632 960110"),
     ("community-matron", "Ruth", "Hale", "nmc", "86D1357E", "01632 960111"),
     ("social-worker", "Sara", "Kowalski", "hcpc", "SW445566", "01632 960112"),
     ("pharmacist", "Ben", "Lloyd", "gphc", "2079876", "01632 960113")),
)
IDENTIFIER_SYSTEMS = {"nmc": "https://fhir.hl7.org.uk/Id/nmc-number", "hcpc": "https://fhir.hl7.org.uk/Id/hcpc-number",
                      "gphc": "https://fhir.hl7.org.uk/Id/gphc-number"}
CASE_MANAGER_ROLES = ("case-manager", "community-matron")


class StoryError(Exception):
    """An operation of the story was refused: the demo is not what it should be."""


class Client:
    """One organisation's client calling the FHIR API in this process (the same handlers as over HTTP)."""

    def __init__(self, api: Any, caller: Any) -> None:
        self.api = api
        self.caller = caller

    def call(self, method: str, path: str, body: Any = None, accept: tuple[int, ...] = (), **params: Any) -> Any:
        """The answer's JSON; raises StoryError on an error status not in `accept`."""
        from server.api.model import FhirRequest
        from server.fhir.outcome import FhirError

        pairs = [(k, str(v)) for k, v in params.items()]
        request = FhirRequest(method=method, path=path, params=pairs, body=body, base_url=self.api.base_url)
        try:
            response = self.api.handle(request, self.caller)
            status, answer = response.status, response.body
        except FhirError as exc:
            status, answer = exc.status, exc.outcome()
        answer = orjson.loads(answer) if isinstance(answer, (str, bytes)) else answer
        if status >= 400 and status not in accept:
            raise StoryError(f"{self.caller.subject}: {method} {path} answered {status}: "
                             f"{orjson.dumps(answer).decode()[:600]}")
        return answer if status < 400 else {"status": status, **(answer or {})}

    def parameters(self, path: str, **values: Any) -> Any:
        """POST an operation with a Parameters body (value[x] from the Python type)."""
        parts = []
        for name, value in values.items():
            for one in value if isinstance(value, list) else [value]:
                if isinstance(one, dict):
                    parts.append({"name": name, "valueReference": one})
                elif isinstance(one, date):
                    parts.append({"name": name, "valueDate": one.isoformat()})
                else:
                    parts.append({"name": name, "valueString": str(one)})
        return self.call("POST", path, {"resourceType": "Parameters", "parameter": parts}, accept=(422,))


@dataclass
class Member:
    """A team member: the PractitionerRole reference, the role code and the name."""

    role: str
    code: str
    name: str
    telephone: str


@dataclass
class Locality:
    """A locality: its Organization, its practices and its team's client and members."""

    code: str
    name: str
    organization: str
    practices: list[str]
    team: Client
    members: list[Member] = field(default_factory=list)

    @property
    def case_managers(self) -> list[Member]:
        return [m for m in self.members if m.code in CASE_MANAGER_ROLES]


@dataclass
class StoryReport:
    """What the year of case management made."""

    localities: int = 0
    practitioners: int = 0
    found: int = 0
    screened: int = 0
    declined: int = 0
    enrolled: Counter[str] = field(default_factory=Counter)
    discharged: Counter[str] = field(default_factory=Counter)
    reviews_done: int = 0
    reviews_overdue: int = 0
    objecting: str = ""
    jean: str = ""
    active: list[str] = field(default_factory=list)  # NHS numbers of the people case-managed at the end

    def describe(self) -> str:
        enrolled = ", ".join(f"{n} {t}" for t, n in sorted(self.enrolled.items()))
        discharged = ", ".join(f"{n} {t}" for t, n in sorted(self.discharged.items()))
        return (f"{self.localities} localities with {self.practitioners} practitioners; {self.found} people found, "
                f"{self.screened} screened ({self.declined} declined), enrolled {enrolled}; discharged "
                f"{discharged}; {self.reviews_done} reviews done, {self.reviews_overdue} plans with a review "
                f"overdue; {jean.NAME} (NHS {jean.NHS_NUMBER}) enrolled on {jean.ENROLLED}")


def caller(subject: str, kind: str, organization: str) -> Any:
    from server.security.context import Caller

    return Caller(subject=f"client:{subject}", organization=organization, kind=kind)


def localities_of(practices: list[str]) -> list[tuple[str, str, list[str]]]:
    """(code, name, practices): the first half of the practices (rounded up) in the north, the rest south."""
    half = (len(practices) + 1) // 2
    parts = [practices[:half], practices[half:]]
    return [(code, name, part) for (code, name), part in zip(LOCALITIES, parts, strict=True) if part]


def build_story(api: Any, practices: list[str], tick: Callable[[], Any] = lambda: None) -> StoryReport:
    """Make the demo area's year of case management (`tick` after each person's step); returns what it made."""
    host = Client(api, caller("demo-integration", "integration", f"{ODS}|HOST"))
    report = StoryReport()
    localities = [register_locality(api, host, code, name, part, TEAMS[i], report)
                  for i, (code, name, part) in enumerate(localities_of(practices))]
    report.localities = len(localities)
    plans: list[tuple[Locality, str]] = []
    for locality in localities:
        plans += run_programme(locality, report, tick)
    review_plans(plans, report)
    report.active = still_enrolled(plans)
    record_objection(api, localities[-1], plans, report)
    return report


def register_locality(api: Any, host: Client, code: str, name: str, practices: list[str],
                      members: tuple[tuple[str, ...], ...], report: StoryReport) -> Locality:
    """The locality's Organization (its practices part of it), then its team's practitioners and roles."""
    made = host.call("POST", "Organization", {
        "resourceType": "Organization", "active": True, "name": f"{name} integrated case management team",
        "identifier": [{"system": ODS, "value": code}],
        "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "team",
                              "display": "Organizational team"}]}]})
    organization = f"Organization/{made['id']}"
    for practice in practices:
        found = host.call("GET", "Organization", identifier=f"{ODS}|{practice}")["entry"][0]["resource"]
        host.call("PUT", f"Organization/{found['id']}", {**found, "partOf": {"reference": organization,
                                                                              "display": made["name"]}})
    team = Client(api, caller("demo-case-management", "case-management", f"{ODS}|{code}"))
    locality = Locality(code, name, organization, practices, team)
    covers = ", ".join(practices)
    for role, given, family, system, number, phone in members:
        practitioner = team.call("POST", "Practitioner", {
            "resourceType": "Practitioner", "active": True,
            "identifier": [{"system": IDENTIFIER_SYSTEMS[system], "value": number}],
            "name": [{"use": "official", "family": family, "given": [given]}],
            "telecom": [{"system": "phone", "value": phone, "use": "work"}]})
        display = role.replace("-", " ").capitalize()
        body: dict[str, Any] = {
            "resourceType": "PractitionerRole", "active": True,
            "period": {"start": (YEAR_START - timedelta(days=30)).isoformat()},
            "practitioner": {"reference": f"Practitioner/{practitioner['id']}", "display": f"{given} {family}"},
            "organization": {"reference": organization, "display": made["name"]},
            "code": [{"coding": [{"system": f"{api.services.profiles.conformance.base}/CodeSystem/care-role",
                                  "code": role, "display": display}]}],
            "telecom": [{"system": "phone", "value": phone, "use": "work"}],
            "availabilityExceptions": f"Covers practices {covers}"}
        if role in CASE_MANAGER_ROLES:
            body["availabilityExceptions"] += "; a caseload of up to 50 active patients, at most 20 new a month"
        made_role = team.call("POST", "PractitionerRole", body)
        locality.members.append(Member(f"PractitionerRole/{made_role['id']}", role, f"{given} {family}", phone))
        report.practitioners += 1
    return locality


def spread(count: int, start: date, end: date) -> list[date]:
    """`count` days spread evenly from start to end, in order."""
    if count <= 1:
        return [start] * count
    step = (end - start).days / (count - 1)
    return [start + timedelta(days=round(i * step)) for i in range(count)]


def run_programme(locality: Locality, report: StoryReport, tick: Callable[[], Any]) -> list[tuple[Locality, str]]:
    """Find, screen, enrol and discharge in the order of the calendar; returns (locality, patient id) enrolled."""
    team = locality.team
    found = team.call("GET", "Patient/$case-finding", locality=locality.code, capacity=100000)
    entries = [e["item"]["reference"].split("/")[1] for e in found.get("entry", [])]
    report.found += len(entries)
    jean_id = None
    if jean.PRACTICE in locality.practices:
        hits = team.call("GET", "Patient", identifier=f"{NHS}|{jean.NHS_NUMBER}").get("entry", [])
        jean_id = hits[0]["resource"]["id"] if hits else None
        report.jean = str(jean_id)
        if jean_id not in entries:
            raise StoryError(f"{jean.NAME} is not on the case-finding list of {locality.name}")
        entries.remove(jean_id)
    first_practice = {pid for pid in entries if practice_of(team, pid) == locality.practices[0]} \
        if len(locality.practices) > 1 else set()
    events: list[tuple[date, int, str, str, str]] = []  # (day, order, action, patient, template)
    for i, (day, patient) in enumerate(zip(spread(len(entries), YEAR_START, LAST_ENROLMENT), entries, strict=True)):
        # declines stay out of the first practice, whose case-finding list the README walks through
        declines = (i + 1) % DECLINE_EVERY == 0 and patient not in first_practice
        template = "havering" if i % 2 == 0 else "rutland"
        events.append((day, len(events), "decline" if declines else "enrol", patient, template))
    if jean_id is not None:
        events.append((date.fromisoformat(jean.ENROLLED), len(events), "enrol", jean_id, "rutland"))
    heapq.heapify(events)
    enrolled: list[tuple[Locality, str]] = []
    while events:
        day, order, action, patient, template = heapq.heappop(events)
        tick()
        if action == "decline":
            report.screened += 1
            report.declined += 1
            team.parameters(f"Patient/{patient}/$screen", decision="declined", date=day,
                            screener={"reference": locality.case_managers[0].role},
                            reason=DECLINE_REASONS[order % len(DECLINE_REASONS)])
        elif action == "enrol":
            if enrol(locality, patient, template, day, report, 0 if patient == jean_id else order // 2):
                enrolled.append((locality, patient))
                leaves = day + timedelta(weeks=12) if template == "havering" else date(
                    day.year + 1, day.month, min(day.day, 28))
                if leaves <= END:
                    heapq.heappush(events, (leaves, order, "discharge", patient, template))
        else:
            reason = ("12 weeks of intensive support completed" if template == "havering"
                      else "12 months in the scheme completed; care plan reviewed in primary care")
            team.parameters(f"Patient/{patient}/$discharge", date=day, reason=reason)
            report.discharged[template] += 1
    return enrolled


def practice_of(team: Client, patient: str) -> str:
    """The ODS code of the practice the patient is registered at."""
    body = team.call("GET", f"Patient/{patient}")
    for gp in body.get("generalPractitioner") or ():
        identifier = gp.get("identifier") or {}
        if identifier.get("system") == ODS:
            return str(identifier.get("value"))
    return ""


def enrol(locality: Locality, patient: str, template: str, day: date, report: StoryReport, turn: int) -> bool:
    """Screen (accepted) and enrol with the case managers in turn (the other when one's caseload is full, Jean
    with the locality's case manager); False when every caseload is full."""
    team = locality.team
    others = [m for m in locality.members if m.code not in CASE_MANAGER_ROLES]
    managers = locality.case_managers
    managers = managers[turn % len(managers):] + managers[:turn % len(managers)]
    for manager in managers:
        answer = team.parameters(f"Patient/{patient}/$enrol", careManager={"reference": manager.role},
                                 template=template, start=day, screener={"reference": manager.role},
                                 teamMember=[{"reference": m.role} for m in others])
        if answer.get("status") != 422:
            report.screened += 1
            report.enrolled[template] += 1
            return True
    return False


def review_plans(plans: list[tuple[Locality, str]], report: StoryReport) -> None:
    """The case managers record the reviews that have fallen due on the active plans, but one plan in four
    still has its latest review to do (overdue)."""
    for i, (locality, patient) in enumerate(plans):
        team = locality.team
        found = team.call("GET", "CarePlan", subject=f"Patient/{patient}", status="active").get("entry", [])
        if not found:
            continue
        plan = found[0]["resource"]
        due = [a for a in plan.get("activity", []) if is_review(a) and a["detail"].get("scheduledPeriod")
               and date.fromisoformat(a["detail"]["scheduledPeriod"]["start"]) <= END]
        if not due:
            continue
        keep_open = due[-1] if (i + 1) % UNREVIEWED_EVERY == 0 else None
        for activity in due:
            if activity is not keep_open:
                activity["detail"]["status"] = "completed"
                report.reviews_done += 1
        report.reviews_overdue += keep_open is not None
        plan.pop("meta", None)
        team.call("PUT", f"CarePlan/{plan['id']}", plan)


def still_enrolled(plans: list[tuple[Locality, str]]) -> list[str]:
    """NHS numbers of the people whose programme episode is still active, in the order of enrolment."""
    numbers = []
    for locality, patient in plans:
        if case_managed(locality.team, patient):
            body = locality.team.call("GET", f"Patient/{patient}")
            numbers += [str(i["value"]) for i in body.get("identifier", []) if i.get("system") == NHS]
    return numbers


def case_managed(team: Client, patient: str) -> bool:
    """Whether the patient's programme episode is active."""
    programme = f"{team.api.services.profiles.conformance.base}/CodeSystem/care-programme|"
    found = team.call("GET", "EpisodeOfCare", patient=f"Patient/{patient}", status="active", type=programme)
    return bool(found.get("entry"))


def admissions_after_enrolment(folder: Path, label: str, report: StoryReport, count: int = 3) -> list[str]:
    """Emergency admissions, still in hospital at the next extract's date, of the last people enrolled (not Jean,
    whose story has no admission after enrolment), as rows of that extract; their NHS numbers."""
    people = [n for n in report.active if n != jean.NHS_NUMBER][-count:]
    last = date(int(label[:4]), int(label[5:7]) % 12 + 1, 1) if label[5:7] != "12" else date(int(label[:4]) + 1, 1, 1)
    rows = []
    for i, number in enumerate(people):
        admitted = last - timedelta(days=2 + i)
        rows.append([f"SD{i + 1:04d}", number, jean.HOSPITAL, admitted.isoformat(), "21", "19", "", "", "", "1", "300",
                     ("J181", "I500", "S7200")[i % 3], *[""] * 19])
    path = folder / "hospital" / jean.HOSPITAL / label / "admissions.csv"
    if b"\nSD0001," not in path.read_bytes():  # an area generated before holds them already
        jean.append_rows(path, rows)
    return people


def is_review(activity: dict[str, Any]) -> bool:
    codes = (activity.get("detail") or {}).get("code", {}).get("coding", [])
    return any(c.get("code") == "review" for c in codes)


def record_objection(api: Any, locality: Locality, plans: list[tuple[Locality, str]], report: StoryReport) -> None:
    """The first person still case-managed at the last locality's last practice objects to sharing; the practice
    records it."""
    practice = locality.practices[-1]
    gp = Client(api, caller("demo-gp", "gp", f"{ODS}|{practice}"))
    team = locality.team
    person = next((p for where, p in plans if where is locality and p != report.jean
                   and practice_of(team, p) == practice
                   and case_managed(team, p)), None)
    if person is None:
        return
    organization = gp.call("GET", "Organization", identifier=f"{ODS}|{practice}")["entry"][0]["resource"]["id"]
    gp.call("POST", "Consent", {
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{person}"}, "dateTime": "2026-10-05T10:00:00Z",
        "organization": [{"reference": f"Organization/{organization}"}],
        "policyRule": {"text": "Objection to sharing the shared care record"},
        "provision": {"type": "deny"}})
    report.objecting = person
