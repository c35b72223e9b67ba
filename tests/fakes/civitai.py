"""A minimal fake of Civitai's orchestration v2 workflows.

Submit honours ``whatif``, ``wait`` and ``externalId`` (a repeat answers
the existing workflow and adds no ledger entry, as does a key first used
with ``whatif``). A workflow advances one state per GET (unassigned →
processing → succeeded) and every GET signs its image URLs afresh; they
stop working ``url_ttl`` seconds later. The imageGen step input is checked
against the seed machine's schema with ``additionalProperties: false``.
"""
import json
import random
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from factory.providers.demo_art import render_image
from tests.fakes.base import Request, Response, ScriptedFake

SEEDS = Path(__file__).resolve().parents[2] / "seeds" / "machines" / "civitai.json"
WORKFLOWS = "/v2/consumer/workflows"
WORKFLOW = WORKFLOWS + r"/(?P<id>[^/]+)"
AIR = r"^urn:air:[\w/-]+:[\w/-]+:[\w/-]+:[\w/.-]+(@[\w/.=,%+:-]+)?$"
WORKFLOW_KEYS = {"steps", "externalId", "tags", "callbacks", "allowMatureContent",
                 "metadata", "tips", "arguments", "nsfwLevel", "experimental",
                 "upgradeMode", "currencies", "ephemeral"}
STEP_KEYS = {"$type", "input", "name", "priority", "timeout", "retries", "metadata"}
EXTERNAL_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"}
FINAL = ("succeeded", "failed", "expired", "canceled")
BUZZ_PER_IMAGE = 4


@dataclass
class Outcome:
    """How the next workflow ends: "ok", "failed" (with ``error``),
    "expired", or "blocked" (every image withheld with a reason)."""

    kind: str = "ok"
    error: str = "Job failed: out of memory"


def step_schema(machine: dict[str, Any]) -> dict[str, Any]:
    """The step input: the machine's keys but the workflow flag, plus the step's."""
    properties = dict(machine["input_schema"]["properties"])
    properties.pop("allowMatureContent", None)
    properties.update(
        engine={"enum": ["sdcpp"]},
        ecosystem={"enum": [machine["endpoint_id"].split(":")[2]]},
        operation={"enum": ["createImage"]},
        model={"type": "string", "pattern": AIR},
        outputFormat={"enum": ["jpeg", "png", "webp"]},
    )
    return {"type": "object", "additionalProperties": False,
            "properties": properties,
            "required": ["ecosystem", "engine", "model", "operation", "prompt"]}


def _problem(status: int, title: str, errors: dict[str, list[str]] | None = None,
             detail: str | None = None) -> Response:
    body: dict[str, Any] = {"type": "https://tools.ietf.org/html/rfc9110",
                            "title": title, "status": status}
    if errors:
        body["errors"] = errors
    if detail:
        body["detail"] = detail
    return Response(status, body, content_type="application/problem+json")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class FakeCivitai(ScriptedFake):
    """Submit, get, cancel and list workflows; serves the images it makes."""

    outcome_type = Outcome

    def __init__(self, token: str = "civitai-fake", seeds: Path = SEEDS,
                 side: int = 64, url_ttl: float = 600.0,
                 run_seconds: float = 0.0) -> None:
        super().__init__(run_seconds)
        self.token, self.side, self.url_ttl = token, side, url_ttl
        machines = json.loads(seeds.read_text())["machines"]
        self.schemas = {m["endpoint_id"].split(":")[2]: step_schema(m)
                        for m in machines}
        self.workflows: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, str] = {}
        self.signatures: dict[str, tuple[str, float]] = {}
        self.route("POST", WORKFLOWS, "submit", self._submit)
        self.route("GET", WORKFLOWS, "list", self._list)
        self.route("GET", WORKFLOW, "get", self._get)
        self.route("PUT", WORKFLOW, "cancel", self._cancel)

    def reset(self) -> None:
        """Forget every workflow, file, fault and request, for the next test."""
        with self.state_lock:
            self.forget(self.workflows, self.keys, self.signatures)
            self.url_ttl = 600.0

    # ------------------------------------------------------------ routes
    def _denied(self, request: Request) -> Response | None:
        if request.headers.get("authorization") == f"Bearer {self.token}":
            return None
        return _problem(401, "Unauthorized")

    def _submit(self, request: Request, match: Any) -> Response:
        denied = self._denied(request)
        if denied:
            return denied
        try:
            body = request.json()
        except ValueError:
            return _problem(400, "The request body is not JSON")
        errors = self._body_errors(body)
        if errors:
            return _problem(400, "One or more validation errors occurred.", errors)
        key = body.get("externalId")
        with self.state_lock:
            if key in self.keys:
                return Response(200, self._snapshot(self.keys[key]))
            whatif = request.query.get("whatif", ["false"])[0].lower() == "true"
            workflow = self._new_workflow(body, whatif)
        if not whatif:
            self.record_submission({"id": workflow["id"], "externalId": key,
                                    "body": body})
            self._hold(workflow["id"], float(request.query.get("wait", ["0"])[0]))
        answer = self._snapshot(workflow["id"])
        return Response(200 if whatif or answer["status"] in FINAL else 202, answer)

    def _body_errors(self, body: Any) -> dict[str, list[str]]:
        if not isinstance(body, dict):
            return {"$": ["A workflow object is required."]}
        errors = {k: ["Unknown member."] for k in set(body) - WORKFLOW_KEYS}
        if "externalId" in body and not Draft202012Validator(EXTERNAL_ID).is_valid(
                body["externalId"]):
            errors["externalId"] = ["Must be 1-128 of [A-Za-z0-9_-]."]
        steps = body.get("steps")
        if not isinstance(steps, list) or not steps:
            errors["steps"] = ["At least one step is required."]
            return errors
        for index, step in enumerate(steps):
            errors.update(self._step_errors(f"steps[{index}]", step))
        return errors

    def _step_errors(self, where: str, step: Any) -> dict[str, list[str]]:
        if not isinstance(step, dict) or step.get("$type") != "imageGen":
            return {f"{where}.$type": ["Only imageGen steps are faked."]}
        errors = {f"{where}.{k}": ["Unknown member."] for k in set(step) - STEP_KEYS}
        step_input = step.get("input")
        if not isinstance(step_input, dict):
            return {f"{where}.input": ["An input object is required."]}
        ecosystem = step_input.get("ecosystem")
        schema = self.schemas.get(ecosystem, next(iter(self.schemas.values())))
        for error in Draft202012Validator(schema).iter_errors(step_input):
            if error.validator == "additionalProperties":
                for k in set(step_input) - set(schema["properties"]):
                    errors[f"{where}.input.{k}"] = [
                        f"The JSON property '{k}' could not be mapped to any member."]
            else:
                path = ".".join(map(str, error.path))
                errors[f"{where}.input{'.' + path if path else ''}"] = [error.message]
        return errors

    def _new_workflow(self, body: dict[str, Any], whatif: bool) -> dict[str, Any]:
        step_input = body["steps"][0]["input"]
        quantity = step_input.get("quantity", 1)
        workflow_id = f"{time.strftime('%Y%m%d')}-{uuid.uuid4().hex[:16]}"
        key = body.get("externalId")
        workflow = {
            "id": workflow_id, "createdAt": _now(), "status": "unassigned",
            "externalId": f"user1-{key}" if key else None,
            "tags": body.get("tags") or [], "metadata": body.get("metadata") or {},
            "arguments": {}, "callbacks": body.get("callbacks") or [],
            "allowMatureContent": body.get("allowMatureContent"),
            "currencies": [], "forceRefunded": False, "upgradeMode": "manual",
            "tips": {"civitai": 0, "creators": 0},
            "cost": {"base": BUZZ_PER_IMAGE * quantity, "tips": {},
                     "total": BUZZ_PER_IMAGE * quantity},
            "steps": [{"$type": "imageGen", "name": "0", "priority": "normal",
                       "status": "unassigned", "metadata": {},
                       "input": step_input, "output": None}],
        }
        self.workflows[workflow_id] = workflow
        if key:
            self.keys[key] = workflow_id
        workflow["_outcome"] = self.next_outcome()
        workflow["_born"], workflow["_whatif"] = time.monotonic(), whatif
        return workflow

    def _hold(self, workflow_id: str, wait: float) -> None:
        if wait > 0:  # no ``wait``: answer at once
            super()._hold(workflow_id, wait)

    def _get(self, request: Request, match: Any) -> Response:
        denied = self._denied(request)
        if denied:
            return denied
        if match["id"] not in self.workflows:
            return _problem(404, "Not Found", detail=f"No workflow {match['id']}")
        answer = self._snapshot(match["id"])
        self._advance(match["id"])  # the next poll sees the next state
        return Response(200, answer)

    def _cancel(self, request: Request, match: Any) -> Response:
        denied = self._denied(request)
        if denied:
            return denied
        with self.state_lock:
            workflow = self.workflows.get(match["id"])
            if workflow is None:
                return _problem(404, "Not Found", detail=f"No workflow {match['id']}")
            if (request.json() or {}).get("status") != "canceled":
                return _problem(400, "Only status 'canceled' can be set")
            if workflow["status"] in FINAL:
                return _problem(400, "Bad Request",
                                detail=f"Workflow is already {workflow['status']}")
            self._set_status(workflow, "canceled")
        return Response(204, None)

    def _list(self, request: Request, match: Any) -> Response:
        denied = self._denied(request)
        if denied:
            return denied
        tags = set(request.query.get("tags", []))
        since = request.query.get("fromDate", [""])[0]
        take = int(request.query.get("take", ["100"])[0])
        with self.state_lock:
            found = [w["id"] for w in reversed(self.workflows.values())
                     if tags <= set(w["tags"]) and not w["_whatif"]
                     and (not since or _parse(w["createdAt"]) >= _parse(since))]
        return Response(200, {"next": "", "items": [self._snapshot(i)
                                                    for i in found[:take]]})

    # ------------------------------------------------------------ lifecycle
    def _advance(self, workflow_id: str, force: bool = False) -> None:
        with self.state_lock:
            workflow = self.workflows[workflow_id]
            if workflow["_whatif"] or workflow["status"] in FINAL:
                return
            if workflow["status"] == "unassigned":
                self._set_status(workflow, "processing")
            elif force or time.monotonic() - workflow["_born"] >= self.run_seconds:
                self._finish(workflow)

    def _finish(self, workflow: dict[str, Any]) -> None:
        outcome: Outcome = workflow["_outcome"]
        step = workflow["steps"][0]
        if outcome.kind in ("failed", "expired"):
            step["output"] = {"images": [], "errors": [outcome.error]}
            self._set_status(workflow, outcome.kind)
            return
        step_input = step["input"]
        seed = step_input.get("seed", random.randrange(2**31))
        step["output"] = {"images": [
            self._image(workflow["id"], step_input, seed + i, outcome)
            for i in range(step_input.get("quantity", 1))]}
        self._set_status(workflow, "succeeded")

    def _image(self, workflow_id: str, step_input: dict[str, Any], seed: int,
               outcome: Outcome) -> dict[str, Any]:
        wide, tall = step_input.get("width", 1024), step_input.get("height", 1024)
        scale = self.side / max(wide, tall)
        size = max(16, round(wide * scale)), max(16, round(tall * scale))
        blob = f"{workflow_id}-{seed}.jpeg"
        image = {"type": "image", "id": blob, "available": True, "width": wide,
                 "height": tall, "nsfwLevel": "pg", "url": None}
        if outcome.kind == "blocked":
            return {**image, "available": False, "nsfwLevel": "xxx",
                    "blockedReason": "NSFW content is not allowed"}
        self.serve_file(blob, render_image(step_input["prompt"], seed, *size, "jpeg"),
                        "image/jpeg")
        return image

    @staticmethod
    def _set_status(workflow: dict[str, Any], status: str) -> None:
        workflow["status"] = workflow["steps"][0]["status"] = status
        stamp = "completedAt" if status in FINAL else "startedAt"
        workflow[stamp] = _now()

    def _snapshot(self, workflow_id: str) -> dict[str, Any]:
        """The public workflow, with image URLs signed for ``url_ttl`` seconds."""
        with self.state_lock:
            public = json.loads(json.dumps(
                {k: v for k, v in self.workflows[workflow_id].items()
                 if not k.startswith("_")}))
        for image in (public["steps"][0].get("output") or {}).get("images", []):
            if image["available"]:
                image["url"] = self._sign(image["id"])
                expires = datetime.now(timezone.utc) + timedelta(seconds=self.url_ttl)
                image["urlExpiresAt"] = expires.isoformat().replace("+00:00", "Z")
        return public

    def _sign(self, blob: str) -> str:
        signature = secrets.token_urlsafe(12)
        self.signatures[signature] = (blob, time.monotonic() + self.url_ttl)
        return f"{self.url}/files/{blob}?sig={signature}"

    def _serve_file(self, request: Request, match: Any) -> Response:
        blob, until = self.signatures.get(request.query.get("sig", [""])[0], ("", 0))
        if blob != match["name"] or time.monotonic() >= until:
            return Response(403, "Signature expired or invalid",
                            content_type="text/plain")
        return super()._serve_file(request, match)


def _parse(moment: str) -> datetime:
    parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
