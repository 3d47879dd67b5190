"""The admin side of the panel: efforts (a step-by-step draft, review, finish, pause/resume/close), contact lists
(CSV upload, column mapping, per-row report, all-or-nothing import), scripts and surveys, dispositions, call
settings, and users and roles.

Every page is server-rendered and every form posts back to the page it came from; a form with problems comes
back with the input kept and the problems beside it, and nothing is saved.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from bridge import language as phone
from panel import i18n
from panel import list_worker as lw
from panel.common import callin_dialable, page_refusal, render, require, user_of
from panel.i18n import M_, N_, reason
from panel.keys import CALLIN_NUMBER, CONTROLLER, STAGE_MEDIA, STORE, USER, Handler
from store import efforts as ef
from store import recordings
from store import results as sr
from store import users as u
from store.contacts import MAP_CHOICES
from store.db import Store, StoreError

log = structlog.get_logger(__name__)

# Labels and messages are marked N_ (M_ with values) and shown through the templates' |translate (panel/i18n.py).
STEPS = [
    ("edit", N_("Details")),
    ("list", N_("List")),
    ("script", N_("Script & survey")),
    ("settings", N_("Call settings")),
    ("review", N_("Review")),
]
MESSAGES = {
    "created": N_("Draft created. Work through the steps, then finish it on the Review step."),
    "saved": N_("Saved."),
    "imported": N_("List imported."),
    "cleared": N_("The list was cleared."),
    "finished": N_("Finished: the effort is live (or scheduled) and its list is now frozen."),
    "paused": N_("Paused: no new calls are placed."),
    "resumed": N_("Resumed."),
    "closed": N_("Closed."),
    "user_created": N_("User created."),
    "role_changed": N_("Role changed."),
    "role_saved": N_("Role saved."),
}
ERRORS_SHOWN = 500
UPLOAD_GONE = N_("That upload is gone (it was imported or expired): upload the file again.")
BASE = "/admin/efforts/{id:\\d+}"
routes = web.RouteTableDef()


# ---------------------------------------------------------------------------------------------- helpers
def require_any(*permissions: str) -> Callable[[Handler], Handler]:
    """The route needs a user holding at least one of ``permissions``."""

    def wrap(fn: Handler) -> Handler:
        @functools.wraps(fn)
        async def guarded(request: web.Request) -> web.StreamResponse:
            user = request[USER]
            if user is not None and not any(p in user["permissions"] for p in permissions):
                return render(
                    request,
                    "error.html",
                    status=403,
                    title=N_("Not allowed"),
                    message=M_(
                        "Your role (%(role)s) cannot do this: it needs one of these: %(needs)s.",
                        role=M_(user["role"]),
                        needs=tuple(M_(u.PERMISSIONS[p]) for p in permissions),
                    ),
                )
            return await require()(fn)(request)

        return guarded

    return wrap


def _store(request: web.Request) -> Store:
    return request.app[STORE]


def _effort(request: web.Request) -> dict[str, Any]:
    campaign = _store(request).campaign(int(request.match_info["id"]))
    if campaign is None:
        raise web.HTTPNotFound(text="No such effort.")
    return campaign


def _fields(form: MultiDictProxy[Any]) -> dict[str, str]:
    """A posted form as plain text fields (files and the CSRF token left out)."""
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "_csrf"}


def _message(request: web.Request) -> str:
    msg = MESSAGES.get(request.query.get("msg", ""), "")
    if msg and request.query.get("n", "").isdigit():
        return M_("%(message)s %(n)s contacts added.", message=M_(msg), n=f"{int(request.query['n']):,}")
    return msg


def _step_page(
    request: web.Request, template: str, effort: dict[str, Any], step: str, status: int = 200, **ctx: Any
) -> web.Response:
    store = _store(request)
    ctx.setdefault("message", _message(request))
    return render(
        request,
        template,
        status=status,
        effort=effort,
        step=step,
        steps=STEPS,
        display_status=ef.effort_status(effort),
        status_labels=ef.STATUS_LABELS,
        frozen=ef.is_frozen(effort),
        count=ef.contact_count(store, effort["id"]),
        **ctx,
    )


def _go(effort_id: int, step: str, msg: str = "", n: int | None = None) -> web.HTTPFound:
    url = f"/admin/efforts/{effort_id}/{step}"
    if msg:
        url += f"?msg={msg}" + (f"&n={n}" if n is not None else "")
    return web.HTTPFound(url)


def _conflict(request: web.Request, message: str, title: str = N_("Not possible now")) -> web.Response:
    return render(request, "error.html", status=409, title=title, message=message)


def _unfrozen_effort(request: web.Request) -> dict[str, Any]:
    """The effort in the path, while its list may still change (409 page once it is launched)."""
    effort = _effort(request)
    if ef.is_frozen(effort):
        raise page_refusal(request, "error.html", 409, title=N_("The list is frozen"), message=FROZEN_MESSAGE)
    return effort


FROZEN_MESSAGE = N_(
    "This effort has been launched, so its list is frozen: contacts can no longer be added or "
    "changed. Create a new effort to call a different list. The script and call settings can "
    "still be edited."
)


# ---------------------------------------------------------------------------------------------- efforts
@routes.get("/admin/efforts")
@require_any("manage_efforts", "view_results")
async def efforts_page(request: web.Request) -> web.StreamResponse:
    return render(
        request,
        "admin/efforts.html",
        efforts=ef.efforts(_store(request)),
        status_labels=ef.STATUS_LABELS,
        message=_message(request),
        origin=str(request.url.origin()),
        callin_number=request.app[CALLIN_NUMBER],
    )


@routes.get("/admin/efforts/new")
@require("manage_efforts")
async def new_page(request: web.Request) -> web.StreamResponse:
    return render(request, "admin/new.html", form={"title": "", "description": ""}, errors={})


@routes.post("/admin/efforts/new")
@require("manage_efforts")
async def new_post(request: web.Request) -> web.StreamResponse:
    form = _fields(await request.post())
    title, description = form.get("title", "").strip(), form.get("description", "").strip()
    errors = {}
    if not title:
        errors["title"] = N_("A title is required.")
    elif len(title) > 200:
        errors["title"] = N_("Keep the title under 200 characters.")
    if errors:
        return render(request, "admin/new.html", status=400, form=form, errors=errors)
    effort = ef.create_effort(_store(request), title, description)
    log.info("admin.effort_created", campaign_id=effort["id"], user_id=user_of(request)["id"])
    raise _go(effort["id"], "edit", "created")


def _details_form(effort: dict[str, Any]) -> dict[str, str]:
    return {
        "title": effort["name"],
        "description": effort["description"],
        "launch": "schedule" if effort["start_at"] else "now",
        "start_at": ef.format_local_datetime(effort["start_at"]),
        "end_at": ef.format_local_datetime(effort["end_at"]),
    }


@routes.get(f"{BASE}/edit")
@require("manage_efforts")
async def edit_page(request: web.Request) -> web.StreamResponse:
    effort = _effort(request)
    return _step_page(request, "admin/edit.html", effort, "edit", form=_details_form(effort), errors={})


@routes.post(f"{BASE}/edit")
@require("manage_efforts")
async def edit_post(request: web.Request) -> web.StreamResponse:
    effort = _effort(request)
    form = _fields(await request.post())
    values, errors = ef.check_details(form)
    if effort["status"] == "closed":
        errors["launch"] = N_("This effort is closed.")
    if errors:
        return _step_page(request, "admin/edit.html", effort, "edit", status=400, form=form, errors=errors)
    _store(request).update_campaign(effort["id"], **values)
    raise _go(effort["id"], "list" if form.get("next") else "edit", "saved")


# ---------------------------------------------------------------------------------------------- lists
def _list_ctx(store: Store, effort: dict[str, Any]) -> dict[str, Any]:
    return {
        "preview": sr.contact_preview(store, effort["id"]),
        "household": "once" if effort["household_once"] else "each",
        "choices": MAP_CHOICES,
        "upload_error": "",
        "mapping": None,
        "report": None,
    }


@routes.get(f"{BASE}/list")
@require("manage_efforts")
async def list_page(request: web.Request) -> web.StreamResponse:
    effort = _effort(request)
    store = _store(request)
    ctx = _list_ctx(store, effort)
    token = request.query.get("upload", "")
    if token and not ef.is_frozen(effort):
        # Check the file at once under the guessed columns: the report shows before anything is imported. In the
        # list worker's process (panel/list_worker.py): this event loop carries the live calls.
        mapping, report = await lw.run(request.app, lw.check, store.path, effort["id"], token)
        if mapping is None or report is None:
            ctx["upload_error"] = UPLOAD_GONE
        else:
            ctx["mapping"], ctx["report"], ctx["errors_shown"] = mapping, report, report.errors[:ERRORS_SHOWN]
    return _step_page(request, "admin/list.html", effort, "list", **ctx)


@routes.post(f"{BASE}/list/upload")
@require("manage_efforts")
async def list_upload(request: web.Request) -> web.StreamResponse:
    effort = _unfrozen_effort(request)
    store = _store(request)
    form = await request.post()
    upload = form.get("file")
    data = upload.file.read() if isinstance(upload, web.FileField) else b""
    problem = ""
    token = ""
    if not isinstance(upload, web.FileField):
        problem = N_("Choose a CSV file to upload.")
    else:
        # Spreadsheets, images, other encodings and delimiters: the kept upload is plain UTF-8 CSV.
        token, problem = await lw.run(request.app, lw.save, store.path, effort["id"], data)
    if problem:
        log.info("admin.list_refused", campaign_id=effort["id"], bytes=len(data), reason=problem[:80])
        ctx = _list_ctx(store, effort)
        ctx["upload_error"] = problem
        return _step_page(request, "admin/list.html", effort, "list", status=400, **ctx)
    log.info("admin.list_uploaded", campaign_id=effort["id"], bytes=len(data))
    raise web.HTTPFound(f"/admin/efforts/{effort['id']}/list?upload={token}")


@routes.post(f"{BASE}/list/import")
@require("manage_efforts")
async def list_import(request: web.Request) -> web.StreamResponse:
    effort = _unfrozen_effort(request)
    store = _store(request)
    form = await request.post()
    token = str(form.get("token", ""))
    mapping = [str(m) for m in form.getall("map", [])]
    household = str(form.get("household", ""))
    skip_bad = form.get("skip_bad") == "1"
    ctx = _list_ctx(store, effort)
    if household not in ("once", "each"):
        ctx["mapping"] = await lw.run(request.app, lw.mapping_of, store.path, effort["id"], token, mapping)
        if ctx["mapping"] is None:
            ctx["upload_error"] = UPLOAD_GONE
        else:
            ctx["mapping"]["problems"] = [N_("Choose how to call people who share a phone number.")]
        return _step_page(request, "admin/list.html", effort, "list", status=400, **ctx)
    ctx["household"] = household
    expected = str(form.get("expect_valid", ""))
    # Checked again (the file against the list as it is now) and imported in the list worker's process.
    choice = (skip_bad, expected, household == "once")
    ctx["mapping"], report, n = await lw.run(
        request.app, lw.check_and_import, store.path, effort["id"], token, mapping, choice
    )
    if ctx["mapping"] is None or report is None:
        ctx["upload_error"] = UPLOAD_GONE
        return _step_page(request, "admin/list.html", effort, "list", status=400, **ctx)
    ctx["report"] = report
    ctx["errors_shown"] = report.errors[:ERRORS_SHOWN]
    if n is None:
        # The report shows why; nothing is imported until the admin says "import the good rows".
        if not lw.held_back(report, skip_bad, expected):
            ctx["upload_error"] = N_("There are no valid rows to import.")
        return _step_page(request, "admin/list.html", effort, "list", status=400, **ctx)
    log.info("admin.list_imported", campaign_id=effort["id"], rows=n, skipped=report.invalid)
    raise _go(effort["id"], "list", "imported", n)


@routes.post(f"{BASE}/list/clear")
@require("manage_efforts")
async def list_clear(request: web.Request) -> web.StreamResponse:
    effort = _unfrozen_effort(request)
    store = _store(request)
    try:
        with store.db.atomic():
            store.conn.execute("DELETE FROM contacts WHERE campaign_id = ?", (effort["id"],))
    except Exception:
        return _conflict(request, N_("Some of these contacts already have calls recorded; the list cannot be cleared."))
    raise _go(effort["id"], "list", "cleared")


@routes.post(f"{BASE}/household")
@require("manage_efforts")
async def household_post(request: web.Request) -> web.StreamResponse:
    effort = _effort(request)
    form = await request.post()
    household = form.get("household")
    if household in ("once", "each"):
        _store(request).update_campaign(effort["id"], household_once=int(household == "once"))
    raise _go(effort["id"], "list", "saved")


# ---------------------------------------------------------------------------------------------- script and survey
def _survey_from_form(form: MultiDictProxy[Any], saved: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    questions = []
    try:
        n = min(int(str(form.get("q_count", "0"))), 200)
    except ValueError:
        n = 0
    kept = {str(q.get("id")): q for q in saved or []}
    for i in range(n):
        qid = str(form.get(f"q{i}_id", ""))
        questions.append(_question(form, f"q{i}_", qid, kept.get(qid)))
    return questions


def _question(form: MultiDictProxy[Any], prefix: str, qid: str, saved: dict[str, Any] | None = None) -> dict[str, Any]:
    kind = str(form.get(f"{prefix}kind", "text"))
    show = str(form.get(f"{prefix}show_if", ""))
    show_if = None
    if "::" in show:
        q, a = show.split("::", 1)
        show_if = {"question": q, "answer": a}
    options = ef.parse_options(str(form.get(f"{prefix}options", ""))) if kind in ("dropdown", "choice") else []
    question: dict[str, Any] = {
        "id": qid,
        "text": str(form.get(f"{prefix}text", "")).strip(),
        "kind": kind,
        "options": options,
        "show_if": show_if,
    }
    # The second-language fields are on the page only while the effort has a second language: a form without
    # them keeps what was saved (dropping the second language hides its translations, it does not delete them).
    kept = saved or {}
    if f"{prefix}second_text" in form:
        second_text = str(form.get(f"{prefix}second_text", "")).strip()
    else:
        second_text = str(kept.get("second_text") or "")
    if f"{prefix}second_options" in form:
        second_options = ef.parse_options(str(form.get(f"{prefix}second_options", "")))
    else:
        second_options = list(kept.get("second_options") or [])
    if second_text:
        question["second_text"] = second_text
    if second_options and kind in ("dropdown", "choice"):
        question["second_options"] = second_options
    return question


def _script_page(request: web.Request, effort: dict[str, Any], status: int = 200, **ctx: Any) -> web.Response:
    store = _store(request)
    ctx.setdefault("script", effort["script"])
    ctx.setdefault("questions", effort["survey"])
    ctx.setdefault(
        "new", {"text": "", "kind": "choice", "options": "", "show_if": "", "second_text": "", "second_options": ""}
    )
    ctx.setdefault("survey_errors", [])
    ctx.setdefault("script_errors", [])
    ctx.setdefault("disp_error", "")
    ctx.setdefault("disp_new", {"label": "", "kind": "contact"})
    ctx.setdefault(
        "langs",
        {
            "language": effort["language"],
            "second_language": effort["second_language"],
            "second_script": effort["second_script"],
        },
    )
    ctx.setdefault("lang_errors", {})
    return _step_page(
        request,
        "admin/script.html",
        effort,
        "script",
        status=status,
        kinds=ef.KINDS,
        lang_names=_lang_names(),
        merge_fields=ef.merge_fields(store, effort["id"]),
        dispositions=store.disposition_codes(effort["id"]),
        disposition_kinds=ef.DISPOSITION_KINDS,
        **ctx,
    )


def _script_problems(store: Store, effort_id: int, script: str) -> list[str]:
    offered, withheld = ef.list_fields(store, effort_id)
    return ef.check_script(script, offered, withheld, has_list=ef.contact_count(store, effort_id) > 0)


def _lang_names() -> dict[str, str]:
    """Each script language by its own name (Español), as callers see it on their toggle."""
    return {code: i18n.name_of(code) for code in ef.SCRIPT_LANGUAGES}


def _langs_from_form(form: MultiDictProxy[Any], effort: dict[str, Any]) -> dict[str, str]:
    """The languages and the second-language script as posted (what the page did not show stays as saved)."""
    out = {}
    for key in ("language", "second_language", "second_script"):
        value = form.get(key)
        out[key] = str(value).replace("\r\n", "\n") if value is not None else str(effort[key])
    return out


@routes.get(f"{BASE}/script")
@require("manage_efforts")
async def script_page(request: web.Request) -> web.StreamResponse:
    return _script_page(request, _effort(request))


@routes.post(f"{BASE}/script")
@require("manage_efforts")
async def script_post(request: web.Request) -> web.StreamResponse:
    effort = _effort(request)
    store = _store(request)
    form = await request.post()
    script = str(form.get("script", ""))
    posted = _survey_from_form(form, effort["survey"])
    langs = _langs_from_form(form, effort)
    lang_errors = ef.check_languages(langs["language"], langs["second_language"])
    new = {
        k: str(form.get(f"new_{k}", ""))
        for k in ("text", "kind", "options", "show_if", "second_text", "second_options")
    }
    op = str(form.get("op", "save"))
    questions = [dict(q) for q in posted]
    errors: list[str] = []
    if op.startswith(("delete-", "up-", "down-")):
        action, _, index = op.partition("-")
        i = int(index) if index.isdigit() else -1
        if not 0 <= i < len(questions):
            errors.append(N_("That question is no longer there."))
        elif action == "delete":
            gone = questions.pop(i)
            needing = [q for q in questions if (q.get("show_if") or {}).get("question") == gone["id"]]
            if needing:
                errors.append(
                    M_(
                        "%(question)s cannot be deleted: %(others)s only show(s) depending on its answer. "
                        "Change those first.",
                        question=gone["id"],
                        others=", ".join(q["id"] for q in needing),
                    )
                )
        else:
            j = i - 1 if action == "up" else i + 1
            if 0 <= j < len(questions):
                questions[i], questions[j] = questions[j], questions[i]
    if op == "add" or new["text"].strip():
        if not new["text"].strip():
            errors.append(N_("Type the new question's text first."))
        else:
            fake = MultiDictProxy(MultiDict({f"n_{k}": v for k, v in new.items()}))
            questions.append(_question(fake, "n_", ef.next_question_id(store, effort["id"], questions)))
    errors += ef.check_survey(questions) + ef.check_translations(questions)
    script_errors = _script_problems(store, effort["id"], script)
    if langs["second_language"]:
        # The same rule for both versions: a field callers cannot see is refused in either.
        second = _lang_names().get(langs["second_language"], langs["second_language"])
        script_errors += [
            M_("%(language)s: %(problem)s", language=second, problem=p)
            for p in _script_problems(store, effort["id"], langs["second_script"])
        ]
    if errors or script_errors or lang_errors:
        return _script_page(
            request,
            effort,
            status=400,
            script=script,
            questions=posted,
            new=new,
            survey_errors=errors,
            script_errors=script_errors,
            langs=langs,
            lang_errors=lang_errors,
        )
    store.update_campaign(effort["id"], script=script.replace("\r\n", "\n"), survey=questions, **langs)
    raise web.HTTPFound(f"/admin/efforts/{effort['id']}/script?msg=saved#survey")


@routes.post(f"{BASE}/dispositions")
@require("manage_efforts")
async def dispositions_post(request: web.Request) -> web.StreamResponse:
    effort = _effort(request)
    store = _store(request)
    form = _fields(await request.post())
    op = form.get("op", "")
    try:
        if op == "add":
            ef.add_disposition(store, effort["id"], form.get("label", ""), form.get("kind", ""))
        elif op == "rename":
            ef.rename_disposition(store, effort["id"], form.get("code", ""), form.get("label", ""))
        elif op == "delete":
            ef.delete_disposition(store, effort["id"], form.get("code", ""))
        else:
            raise StoreError("unknown action")
    except StoreError as exc:
        disp_new = {"label": form.get("label", ""), "kind": form.get("kind", "contact")} if op == "add" else None
        return _script_page(
            request,
            effort,
            status=400,
            disp_error=M_("Not saved: %(reason)s.", reason=reason(exc)),
            **({"disp_new": disp_new} if disp_new else {}),
        )
    raise web.HTTPFound(f"/admin/efforts/{effort['id']}/script?msg=saved#dispositions")


# ---------------------------------------------------------------------------------------------- call settings
# What a voter of a language hears as a voicemail or an abandon message (the state the page and Review show).
MESSAGE_STATES = {
    "recorded": N_("Recorded"),
    "spoken": N_("Spoken from the settings"),
    "effort": N_("The effort's message (%(language)s)"),
    "none_voicemail": N_("None"),
    "none_abandon": N_("Not spoken yet (Asterisk's “all representatives are busy” until it is)"),
}
SAVE_AGAIN = N_("Nothing was saved: choose the WAV file again.")


def _media_file(store: Store, media: str) -> Path | None:
    """An uploaded message's converted WAV in the data dir (a message recorded by phone has none there)."""
    if not media:
        return None
    path = ef.media_dir(store) / f"{Path(media).name}.wav"
    return path if path.is_file() else None


def _voicemail_file(store: Store, effort: dict[str, Any]) -> Path | None:
    return _media_file(store, effort["voicemail_media"])


def _message_languages(effort: dict[str, Any]) -> list[str]:
    """The languages voters may hear the effort's messages in: its own first, then each other one the phone side
    speaks (bridge.language; a list's language column picks among them)."""
    own = phone.effort_language(effort)
    return [own, *(x for x in phone.LANGUAGES if x != own)]


def _message_slots(effort: dict[str, Any]) -> list[tuple[str, str]]:
    """(language, kind) the settings page sets per language: the voicemail in the effort's own language is the
    Voicemail card's."""
    own = phone.effort_language(effort)
    return [(x, k) for x in _message_languages(effort) for k in ef.MESSAGE_KINDS if not (x == own and k == "voicemail")]


def _own_message(effort: dict[str, Any], language: str, kind: str) -> str:
    """The message set for this language itself (the effort's columns for its own, else media_by_language)."""
    if language == phone.effort_language(effort):
        return str(effort[f"{kind}_media"] or "")
    return phone.other_media(effort).get(language, {}).get(kind, "")


def _is_recording(effort: dict[str, Any], media: str, kind: str) -> bool:
    return bool(media) and not (kind == "abandon" and ef.is_spoken_abandon(media, effort["id"]))


def _message_states(store: Store, effort: dict[str, Any]) -> list[dict[str, Any]]:
    """Per language, what its voters hear (bridge.language.message_media decides; this names it) and, for a
    recording uploaded here, the address that plays it back."""
    own = phone.effort_language(effort)
    rows = []
    for language in _message_languages(effort):
        row: dict[str, Any] = {"lang": language, "name": i18n.name_of(language), "own": language == own}
        for kind in ef.MESSAGE_KINDS:
            media = phone.message_media(effort, kind, language)
            mine = {_own_message(effort, language, kind), phone.other_media(effort).get(language, {}).get(kind, "")}
            if not media:
                state = f"none_{kind}"
            elif media not in mine:
                state = "effort"
            else:
                state = "recorded" if _is_recording(effort, media, kind) else "spoken"
            row[kind] = state
            label = MESSAGE_STATES[state]
            row[f"{kind}_label"] = M_(label, language=i18n.name_of(own)) if state == "effort" else label
            row[f"{kind}_set"] = _is_recording(effort, _own_message(effort, language, kind), kind)
            row[f"{kind}_url"] = (
                f"/admin/efforts/{effort['id']}/message/{kind}/{language}.wav"
                if state == "recorded" and _media_file(store, media)
                else ""
            )
        rows.append(row)
    return rows


def _wav_uploads(raw: MultiDictProxy[Any], names: list[str]) -> tuple[dict[str, bytes], dict[str, str]]:
    """The WAV files posted in these fields (empty ones left out) and each one's problem (store.efforts.check_wav:
    format, size and length), by field."""
    files: dict[str, bytes] = {}
    errors: dict[str, str] = {}
    for name in names:
        upload = raw.get(name)
        data = upload.file.read() if isinstance(upload, web.FileField) else b""
        if data:
            files[name] = data
            problem = ef.check_wav(data)
            if problem:
                errors[name] = problem
    return files, errors


def _message_defaults(
    effort: dict[str, Any], form: dict[str, str], files: dict[str, bytes]
) -> tuple[dict[tuple[str, str], str], dict[str, str]]:
    """The recordings the organiser sent back to the default ({kind}_default_{language} ticked), as store changes,
    and the fields that ask for both a new file and the default."""
    own = phone.effort_language(effort)
    changes: dict[tuple[str, str], str] = {}
    errors: dict[str, str] = {}
    for language, kind in _message_slots(effort):
        if form.get(f"{kind}_default_{language}") != "1":
            continue
        if f"{kind}_file_{language}" in files:
            errors[f"{kind}_file_{language}"] = N_("Upload a file or go back to the default, not both.")
        elif _is_recording(effort, _own_message(effort, language, kind), kind):
            changes[("" if language == own else language, kind)] = ""
    return changes, errors


def _settings_page(
    request: web.Request, effort: dict[str, Any], form: dict[str, str], errors: dict[str, str], status: int = 200
) -> web.Response:
    store = _store(request)
    return _step_page(
        request,
        "admin/settings.html",
        effort,
        "settings",
        status=status,
        form=form,
        errors=errors,
        has_voicemail=_voicemail_file(store, effort) is not None or bool(effort["voicemail_media"]),
        legal=(ef.LEGAL_START, ef.LEGAL_END),
        recording=recordings.latest(store, effort["id"]),
        now=time.time(),
        callin_number=request.app[CALLIN_NUMBER],
        messages=_message_states(store, effort),
    )


@routes.post(f"{BASE}/voicemail/record")
@require("manage_efforts")
async def record_by_phone(request: web.Request) -> web.StreamResponse:
    """A code the admin keys in after calling the call-in number; what they say becomes the voicemail."""
    effort = _effort(request)
    req = recordings.request(_store(request), effort["id"])
    log.info("admin.recording_requested", campaign_id=effort["id"], expires_at=req["expires_at"])
    raise web.HTTPFound(f"/admin/efforts/{effort['id']}/settings#record-by-phone")


@routes.get(f"{BASE}/settings")
@require("manage_efforts")
async def settings_page(request: web.Request) -> web.StreamResponse:
    effort = _effort(request)
    return _settings_page(request, effort, ef.settings_form(effort), {})


@routes.post(f"{BASE}/settings")
@require("manage_efforts")
async def settings_post(request: web.Request) -> web.StreamResponse:
    effort = _effort(request)
    store = _store(request)
    raw = await request.post()
    form = _fields(raw)
    slots = _message_slots(effort)
    files, errors = _wav_uploads(raw, ["voicemail_file", *(f"{kind}_file_{x}" for x, kind in slots)])
    data = files.get("voicemail_file", b"")
    messages, conflicts = _message_defaults(effort, form, files)
    values, more = ef.check_settings(form, effort, has_new_voicemail=bool(data) and "voicemail_file" not in errors)
    errors = {**more, **conflicts, **errors}
    if errors:
        # A file input cannot be given back filled in: each good file is named as not kept.
        errors.update({name: SAVE_AGAIN for name in files if name not in errors})
        return _settings_page(request, effort, form, errors, status=400)
    if data:
        values["voicemail_media"] = await asyncio.to_thread(
            ef.stage_voicemail, store, effort["id"], data, request.app[STAGE_MEDIA]
        )
        log.info("admin.voicemail_staged", campaign_id=effort["id"], media=values["voicemail_media"])
    own = phone.effort_language(effort)
    for language, kind in slots:
        upload = files.get(f"{kind}_file_{language}")
        if upload:
            media = await asyncio.to_thread(
                ef.stage_message, store, effort["id"], upload, request.app[STAGE_MEDIA], kind, language
            )
            messages[("" if language == own else language, kind)] = media
            log.info("admin.message_staged", campaign_id=effort["id"], kind=kind, language=language, media=media)
    try:
        ef.save_settings(store, effort, values, messages)
    except StoreError as exc:
        return _settings_page(request, effort, form, {"general": reason(exc)}, status=400)
    raise _go(effort["id"], "review" if form.get("next") else "settings", "saved")


@routes.get(f"{BASE}/voicemail.wav")
@require("manage_efforts")
async def voicemail_audio(request: web.Request) -> web.StreamResponse:
    path = _voicemail_file(_store(request), _effort(request))
    if path is None:
        raise web.HTTPNotFound(text="No recorded message.")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav"})


@routes.get(f"{BASE}/message/{{kind:voicemail|abandon}}/{{lang:[a-z]+}}.wav")
@require("manage_efforts")
async def message_audio(request: web.Request) -> web.StreamResponse:
    """A message uploaded for a language, played back on the settings page."""
    effort = _effort(request)
    kind, language = request.match_info["kind"], request.match_info["lang"]
    media = _own_message(effort, language, kind) if language in phone.LANGUAGES else ""
    path = _media_file(_store(request), media) if _is_recording(effort, media, kind) else None
    if path is None:
        raise web.HTTPNotFound(text="No recorded message.")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav"})


# ---------------------------------------------------------------------------------------------- review, lifecycle
NO_DID_WARNING = N_(
    "Volunteers have no phone number to call in: PHONEBANK_CALLIN_NUMBER is not set, so the call-in "
    "is only the extension “%(number)s”, which a regular phone cannot reach. Callers are told to dial it "
    "from a SIP softphone with an account here, or to use computer audio. Set PHONEBANK_CALLIN_NUMBER "
    "to your DID (docs/OPERATIONS.md, Connecting a real SIP trunk and DID)."
)


def _warnings(store: Store, effort: dict[str, Any], count: int, callin_number: str = "") -> list[str]:
    out: list[str] = []
    if effort["dial_mode"] != "personal" and callin_number and not callin_dialable(callin_number):
        out.append(M_(NO_DID_WARNING, number=callin_number))
    if count == 0:
        out.append(N_("No contacts yet: import a list (the effort cannot be finished without one)."))
    if not effort["script"].strip():
        out.append(N_("No script: callers will have nothing to read."))
    else:
        # The list may have changed since the script was saved: a field it no longer has reaches callers as {x}.
        problems = _script_problems(store, effort["id"], effort["script"])
        if problems:
            out.append(M_("The script has a problem: %(problems)s", problems=" ".join(problems)))
    if not effort["survey"]:
        out.append(N_("No survey questions: only the disposition will be recorded."))
    languages = ef.script_languages(effort)
    if len(languages) > 1:
        if effort["second_script"].strip():
            problems = _script_problems(store, effort["id"], effort["second_script"])
            if problems:
                out.append(
                    M_(
                        "The script in %(language)s has a problem: %(problems)s",
                        language=i18n.name_of(languages[1]),
                        problems=" ".join(problems),
                    )
                )
        missing = ef.missing_translations(effort)
        if missing:
            out.append(
                M_(
                    "Not translated into %(language)s yet (callers see it in %(primary)s, marked as such): "
                    "%(missing)s.",
                    language=i18n.name_of(languages[1]),
                    primary=i18n.name_of(languages[0]),
                    missing=tuple(missing),
                )
            )
    if effort["dial_mode"] != "personal" and not effort["caller_id"]:
        out.append(N_("No caller ID: the computer dialer will show the trunk's default number."))
    if effort["machine_action"] == "voicemail" and not effort["voicemail_media"]:
        out.append(N_("Voicemail is on but no message is recorded."))
    if effort["start_at"] and effort["start_at"] < time.time() and not ef.is_frozen(effort):
        out.append(N_("The scheduled start is in the past: the effort starts calling as soon as it is finished."))
    if effort["end_at"] and effort["end_at"] < time.time():
        out.append(N_("The end date has passed: no calls will be placed."))
    return out


def _review_page(request: web.Request, effort: dict[str, Any], status: int = 200, error: str = "") -> web.Response:
    store = _store(request)
    count = ef.contact_count(store, effort["id"])
    return _step_page(
        request,
        "admin/review.html",
        effort,
        "review",
        status=status,
        warnings=_warnings(store, effort, count, request.app[CALLIN_NUMBER]),
        dispositions=store.disposition_codes(effort["id"]),
        disposition_kinds=ef.DISPOSITION_KINDS,
        kinds=ef.KINDS,
        lang_names=_lang_names(),
        origin=str(request.url.origin()),
        error=error,
        messages=_message_states(store, effort),
    )


@routes.get(f"{BASE}/review")
@require("manage_efforts")
async def review_page(request: web.Request) -> web.StreamResponse:
    return _review_page(request, _effort(request))


@routes.post(f"{BASE}/finish")
@require("manage_efforts")
async def finish_post(request: web.Request) -> web.StreamResponse:
    effort = _effort(request)
    if (await request.post()).get("confirm") != "1":
        # Finishing cannot be undone (the list freezes, calls start): only on an explicit confirmation.
        return _review_page(
            request,
            effort,
            status=400,
            error=N_("Not finished: tick the box to confirm that calling starts and the list freezes."),
        )
    try:
        ef.finish(_store(request), effort["id"])
    except StoreError as exc:
        return _conflict(request, M_("Not finished: %(reason)s.", reason=reason(exc)))
    log.info("admin.effort_finished", campaign_id=effort["id"], user_id=user_of(request)["id"])
    raise _go(effort["id"], "review", "finished")


def _lifecycle(action: str) -> Handler:
    @require("manage_efforts")
    async def handler(request: web.Request) -> web.StreamResponse:
        effort = _effort(request)
        try:
            ef.change_status(_store(request), effort["id"], action)
        except StoreError as exc:
            return _conflict(request, M_("Not done: %(reason)s.", reason=reason(exc)))
        log.info(f"admin.effort_{action}", campaign_id=effort["id"], user_id=user_of(request)["id"])
        form = await request.post()
        back = "list" if form.get("back") == "list" else "review"
        raise _go(effort["id"], back, {"pause": "paused", "resume": "resumed", "close": "closed"}[action])

    handler.__name__ = f"{action}_post"
    return handler


# ---------------------------------------------------------------------------------------------- users and roles
def _users_page(request: web.Request, status: int = 200, **ctx: Any) -> web.Response:
    store = _store(request)
    ctx.setdefault("new_user", {"username": "", "name": "", "email": "", "role": "caller"})
    ctx.setdefault("user_error", "")
    ctx.setdefault("role_error", "")
    ctx.setdefault("new_role", {"name": "", "perms": []})
    ctx.setdefault("message", _message(request))
    return render(
        request,
        "admin/users.html",
        status=status,
        users=u.users(store),
        roles=u.roles(store),
        permissions=u.PERMISSIONS,
        **ctx,
    )


@routes.get("/admin/users")
@require("manage_users")
async def users_page(request: web.Request) -> web.StreamResponse:
    return _users_page(request)


@routes.post("/admin/users")
@require("manage_users")
async def users_post(request: web.Request) -> web.StreamResponse:
    store = _store(request)
    raw = await request.post()
    form = _fields(raw)
    op = form.get("op", "")
    me = user_of(request)
    if op == "create_user":
        try:
            created = u.create_user(
                store,
                form.get("username", ""),
                form.get("password", ""),
                form.get("role", ""),
                name=form.get("name", ""),
                email=form.get("email", ""),
            )
        except StoreError as exc:
            keep = {k: form.get(k, "") for k in ("username", "name", "email", "role")}
            return _users_page(
                request, status=400, new_user=keep, user_error=M_("Not created: %(reason)s.", reason=reason(exc))
            )
        log.info("admin.user_created", user_id=created["id"], role=created["role"], by=me["id"])
        raise web.HTTPFound("/admin/users?msg=user_created")
    if op == "set_role":
        try:
            target = int(form.get("user_id", ""))
        except ValueError:
            target = -1
        if u.user_by_id(store, target) is None:
            return _users_page(request, status=400, user_error=N_("No such user."))
        if target == me["id"]:
            return _users_page(
                request, status=400, user_error=N_("You cannot change your own role (ask another administrator).")
            )
        try:
            u.set_role(store, target, form.get("role", ""))
        except StoreError as exc:
            return _users_page(request, status=400, user_error=M_("Not changed: %(reason)s.", reason=reason(exc)))
        log.info("admin.role_changed", user_id=target, role=form.get("role"), by=me["id"])
        # A coaching started under the old role ends with it (the captain starts again if the new one allows).
        await request.app[CONTROLLER].end_coaching_of(target, "role_changed")
        raise web.HTTPFound("/admin/users?msg=role_changed")
    if op == "save_role":
        perms = [str(p) for p in raw.getall("perm", [])]
        try:
            u.save_role(store, form.get("role_name", ""), perms)
        except StoreError as exc:
            return _users_page(
                request,
                status=400,
                role_error=M_("Not saved: %(reason)s.", reason=reason(exc)),
                new_role={"name": form.get("role_name", ""), "perms": perms},
            )
        await request.app[CONTROLLER].recheck_coaches()  # the role may have lost coach_callers
        raise web.HTTPFound("/admin/users?msg=role_saved#roles")
    return _users_page(request, status=400, user_error=N_("Unknown action."))


# ---------------------------------------------------------------------------------------------- kept uploads
UPLOAD_SWEEP_S = 3600


async def upload_sweeper(app: web.Application) -> AsyncIterator[None]:
    """Uploads nobody imported are deleted a day later even if nobody uploads again (they hold voters' data)."""

    async def sweep() -> None:
        try:
            gone = await asyncio.to_thread(ef.sweep_uploads, app[STORE])
            if gone:
                log.info("admin.uploads_swept", files=gone)
        except Exception:  # a failed sweep must not stop the panel or the loop: the next one retries
            log.exception("admin.upload_sweep_failed")

    async def sweep_forever() -> None:
        while True:
            await asyncio.sleep(UPLOAD_SWEEP_S)
            await sweep()

    await sweep()  # at start: what a stopped panel left behind
    task = asyncio.create_task(sweep_forever())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


for _action in ("pause", "resume", "close"):
    routes.post(f"{BASE}/{_action}")(_lifecycle(_action))
