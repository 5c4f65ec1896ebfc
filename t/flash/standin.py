#!/usr/bin/env python3
"""Stand-in for Flash, the external scene generator, for the module's tests.

    standin.py --port N [--host 127.0.0.1] [--delay SECONDS] [--key KEY] [--log FILE]

Python 3 standard library only.  See README.md next to this file for the
failure modes (``[flash:MODE]`` tokens in the query) and the control
endpoints under ``/_standin/``.
"""

import argparse
import base64
import hashlib
import json
import os
import re
import select
import signal
import socket
import sys
import threading
import time
import unicodedata
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

GENERATE_PATH = "/api/v1/timepoints/generate/sync"
MAX_BODY = 16 * 1024 * 1024
HUGE_BODY_SIZE = 20 * 1024 * 1024          # exact size of a `huge` answer
DATAURI_RAW_BYTES = 3 * 1024 * 1024 * 3 // 4  # base64 -> 3 MiB of text

TOKEN_RE = re.compile(r"\[flash:([^\]]*)\]", re.IGNORECASE)

STATUS_MODES = {
    "401": (401, "Invalid service key"),
    "402": (402, "Insufficient credits"),
    "422": (422, "Year must be a valid integer"),
    "429": (429, "Rate limited"),
    "500": (500, "Pipeline error"),
    "504": (504, "Generation timed out"),
    # markup and script in the detail, which the job's error quotes: a page
    # that shows errors must show this as text (t/80-status-page.t)
    "hostile": (422, "<img src=x onerror=alert(1)><script>alert(2)</script>"),
}
BODY_MODES = {"hang", "close", "garbage", "array", "huge"}
WAIT_MODES = {"hold"}
SCENE_MODES = {
    "datauri", "blocked", "noyear", "stringyear", "bce",
    # extras beyond the brief, for edge cases of the contract
    "monthname", "gemini", "openai", "noprovider", "nulls", "emptyloc",
    "unsafe", "timepointid",
}

TIMES_OF_DAY = [
    "dawn", "early morning", "morning", "late morning", "midday", "noon",
    "early afternoon", "afternoon", "late afternoon", "evening", "dusk",
    "night", "late night", "midnight",
]

LOCATIONS = [
    "Independence Hall, Philadelphia, Pennsylvania, United States",
    "Philadelphia, Pennsylvania, United States",
    "Grossmünster, Zürich, Kanton Zürich, Schweiz",
    "Zürich, Kanton Zürich, Schweiz",
    "Praça da Sé, São Paulo, São Paulo, Brasil",
    "São Paulo, São Paulo, Brasil",
    "Wawel Castle, Kraków, Lesser Poland, Polska",
    "Kraków, Lesser Poland, Polska",
    "Tower of London, London, England, United Kingdom",
    "Île de la Cité, Paris, Île-de-France, France",
    "Alhambra, Granada, Andalucía, España",
    "Hagia Sophia, İstanbul, Marmara, Türkiye",
    "Forbidden City, Beijing, China",
    "Kyoto, Japan",
    "Reykjavík, Ísland",
    "Antarctica",
    "Atlantic Ocean",
]

TAGS = [
    "politics", "war", "science", "art", "religion", "exploration", "trade",
    "revolution", "architecture", "music", "law", "medicine",
]

CHARACTERS = [
    "Benjamin Franklin", "Thomas Jefferson", "Marie Skłodowska-Curie",
    "Ada Lovelace", "Nikola Tesla", "Frédéric Chopin", "Mikołaj Kopernik",
    "Søren Kierkegaard", "José de San Martín", "Hypatia", "Zhang Heng",
    "Gaius Julius Caesar", "Ibn Baṭṭūṭa", "Hildegard von Bingen",
    "Antonín Dvořák",
]

MONTH_NAMES = [
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
]

FILLER = b"The scene unfolds slowly while the chronicler keeps writing. "


# --------------------------------------------------------------------------
# modes


class BadMode(ValueError):
    pass


def parse_mode_text(text):
    """Parse 'delay=2,500' style text into a dict (raises BadMode)."""
    mode = {"status": None, "body": None, "scene": set(), "delay": None,
            "fail": None, "fail429": None, "hold": False, "tokens": []}
    for raw in text.split(","):
        tok = raw.strip().lower()
        if not tok:
            continue
        mode["tokens"].append(tok)
        if "=" in tok:
            name, _, val = tok.partition("=")
            name = name.strip()
            val = val.strip()
            try:
                if name == "delay":
                    mode["delay"] = max(0.0, float(val))
                elif name in ("fail", "fail429"):
                    mode[name] = max(0, int(val))
                elif name == "date":
                    # date=M-D: the scene's month and day, so that a test
                    # can make a moment of today's date
                    m, _, d = val.partition("-")
                    m, d = int(m), int(d)
                    if not (1 <= m <= 12 and 1 <= d <= 31):
                        raise BadMode(tok)
                    mode["scene"].add(("date", m, d))
                else:
                    raise BadMode(tok)
            except ValueError:
                raise BadMode(tok)
        elif tok in STATUS_MODES:
            mode["status"] = tok
        elif tok in BODY_MODES:
            mode["body"] = tok
        elif tok in WAIT_MODES:
            mode["hold"] = True
        elif tok in SCENE_MODES:
            mode["scene"].add(tok)
        else:
            raise BadMode(tok)
    return mode


def split_query(query):
    """Return (query without [flash:...] tokens, list of token texts)."""
    tokens = TOKEN_RE.findall(query)
    clean = " ".join(TOKEN_RE.sub(" ", query).split())
    return clean, tokens


# --------------------------------------------------------------------------
# deterministic scene


def slugify(text):
    text = unicodedata.normalize("NFKD", text)
    text = text.encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"[^a-z0-9_\s-]", "", text)
    text = re.sub(r"[\s-]+", "-", text)
    return text.strip("-")


def title_case(text):
    return " ".join(w[:1].upper() + w[1:] for w in text.split())


class Hasher:
    """Deterministic choices derived from the query text."""

    def __init__(self, text):
        self.text = text
        self.digest = hashlib.sha256(text.encode("utf-8")).hexdigest()

    def num(self, label, modulo):
        h = hashlib.sha256((label + "\0" + self.text).encode("utf-8"))
        return int.from_bytes(h.digest()[:8], "big") % modulo

    def pick(self, label, seq):
        return seq[self.num(label, len(seq))]

    def sample(self, label, seq, lo, hi):
        n = lo + self.num(label + "#n", hi - lo + 1)
        ranked = sorted(seq, key=lambda x: hashlib.sha256(
            (label + "\0" + x + "\0" + self.text).encode("utf-8")).digest())
        return ranked[:n]


def year_from_query(q, h):
    low = q.lower()
    m = re.search(r"\b(\d{1,4})\s*(?:bce|bc|b\.c\.e\.|b\.c\.)(?![a-z])", low)
    if m:
        return -max(1, int(m.group(1)))
    bce = re.search(r"\b(?:bce|bc)\b", low) is not None
    if bce:
        m = re.search(r"\b(\d{1,4})\b", low)
        if m and int(m.group(1)) > 0:
            return -int(m.group(1))
        return -(1 + h.num("bceyear", 3000))
    m = re.search(r"(?<![\d.])(\d{3,4})(?![\d.])", low)
    if m and int(m.group(1)) > 0:
        return int(m.group(1))
    if h.num("isbce", 5) == 0:
        return -(1 + h.num("year", 3000))
    return 100 + h.num("year", 1925)


def era_of(year):
    if year < 500:
        return "Ancient"
    if year < 1500:
        return "Medieval"
    if year < 1800:
        return "Early Modern"
    if year < 1946:
        return "Modern"
    return "Contemporary"


def year_text(year):
    return "%d BCE" % -year if year < 0 else "%d" % year


_DATAURI = None
_DATAURI_LOCK = threading.Lock()


def datauri():
    global _DATAURI
    with _DATAURI_LOCK:
        if _DATAURI is None:
            raw = bytearray(b"\x89PNG\r\n\x1a\n")
            block = hashlib.sha256(b"standin").digest()
            while len(raw) < DATAURI_RAW_BYTES:
                block = hashlib.sha256(block).digest()
                raw += block * 64
            del raw[DATAURI_RAW_BYTES:]
            _DATAURI = "data:image/png;base64," + base64.b64encode(bytes(raw)).decode("ascii")
        return _DATAURI


def build_scene(query, preset, modes):
    clean, _ = split_query(query)
    if not clean:
        clean = "Untitled moment"
    h = Hasher(clean)
    sid = str(uuid.uuid4())
    name = title_case(clean)
    slug = (slugify(name) or "timepoint") + "-" + h.digest[:4]
    year = year_from_query(clean, h)
    month = 1 + h.num("month", 12)
    day = 1 + h.num("day", 28)
    tod = h.pick("tod", TIMES_OF_DAY)
    location = h.pick("location", LOCATIONS)
    tags = h.sample("tags", TAGS, 2, 4)
    chars = h.sample("chars", CHARACTERS, 1, 3)

    for m in modes:
        if isinstance(m, tuple) and m[0] == "date":
            month, day = m[1], m[2]

    if "bce" in modes:
        year, month, day = -44, 3, 15
        location = "Theatre of Pompey, Rome, Italia"
        chars = ["Gaius Julius Caesar", "Marcus Junius Brutus"]

    city = location.split(",")[0].strip() if location else "somewhere"
    summary = (
        "On %s %d, %s, at %s, %s. %s and the people around %s watch the moment "
        "take shape; the %s light falls on faces that will be remembered, and "
        "the air is thick with %s. «%s» — the chroniclers disagree on every "
        "detail except the date."
        % (MONTH_NAMES[month - 1], day, year_text(year), city, name,
           ", ".join(chars), "them" if len(chars) > 1 else "this figure",
           tod, " and ".join(tags), name))

    scene = {
        "id": sid,
        "name": name,
        "slug": slug,
        "year": year,
        "month": month,
        "day": day,
        "time_of_day": tod,
        "location": location,
        "tags": tags,
        "characters": {"characters": [
            {"name": c, "role": "participant" if i else "protagonist"}
            for i, c in enumerate(chars)]},
        "moment": {"plot_summary": summary},
        "grounding": {"verified_year": year},
        "era": era_of(year),
        "image_url": "https://images.example/%s.png" % sid,
        "share_url": "https://flash.example/t/%s" % slug,
        "text_model_used": "deepseek/deepseek-chat",
        "image_model_used": "flux-schnell",
        "model_provider": "openrouter",
        "model_permissiveness": "permissive",
        "query": query,
        "preset": preset,
        "status": "completed",
    }

    if "datauri" in modes:
        scene["image_url"] = datauri()
    if "blocked" in modes:
        scene["model_provider"] = "google"
        scene["text_model_used"] = "gemini-2.5-flash"
    if "gemini" in modes:
        del scene["model_provider"]
        scene["text_model_used"] = "gemini-2.5-flash"
    if "openai" in modes:
        del scene["model_provider"]
        scene["text_model_used"] = "openai/gpt-4o"
    if "noprovider" in modes:
        del scene["model_provider"]
    if "noyear" in modes:
        del scene["year"]
        scene["grounding"] = {}
    if "stringyear" in modes:
        scene["year"] = "1776"
        scene["grounding"] = {}
    if "monthname" in modes:
        scene["month"] = MONTH_NAMES[month - 1]
    if "emptyloc" in modes:
        scene["location"] = ""
    if "timepointid" in modes:
        scene["timepoint_id"] = scene.pop("id")
    if "unsafe" in modes:
        scene["slug"] = "../../etc/passwd"
        scene["name"] = "../.."
        scene["location"] = "., .., /"
        scene["time_of_day"] = "golden hour"
        scene["month"] = 13
        scene["day"] = 42
    if "nulls" in modes:
        for k in ("id", "name", "slug", "month", "day", "time_of_day",
                  "location", "tags", "characters", "moment", "grounding",
                  "era", "image_url", "share_url", "text_model_used",
                  "image_model_used", "model_provider",
                  "model_permissiveness", "query"):
            if k in scene:
                scene[k] = None
    return scene


# --------------------------------------------------------------------------
# state


class State:
    def __init__(self, delay, key, logfile):
        self.lock = threading.Lock()
        self.delay = delay
        self.start_delay = delay
        self.key = key
        self.default_mode = None
        self.stop = threading.Event()
        self.gate = threading.Event()  # replaced by each release
        self.held = 0
        self.log_fp = open(logfile, "a", buffering=1, encoding="utf-8") if logfile else None
        self.log_lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.total = 0
            self.by_job = {}
            self.calls = {}
            self.in_flight = getattr(self, "in_flight", 0)
            self.max_in_flight = self.in_flight

    def record(self, job_key, entry):
        with self.lock:
            self.total += 1
            self.by_job[job_key] = self.by_job.get(job_key, 0) + 1
            self.calls.setdefault(job_key, []).append(entry)
            return self.by_job[job_key]

    def enter(self):
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self):
        with self.lock:
            self.in_flight -= 1

    def log(self, line):
        if self.log_fp is None:
            return
        with self.log_lock:
            try:
                self.log_fp.write("%s %s\n" % (
                    time.strftime("%Y-%m-%dT%H:%M:%S"), line))
            except (OSError, ValueError):
                pass


STATE = None


# --------------------------------------------------------------------------
# HTTP


class ClientGone(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "flash-standin/1.0"
    sys_version = ""

    # ---- plumbing ----

    def handle(self):
        try:
            super().handle()
        except (ConnectionError, TimeoutError, socket.timeout, ClientGone):
            self.close_connection = True
        except OSError:
            self.close_connection = True

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, fmt, *args):  # BaseHTTPRequestHandler's own lines
        STATE.log("%s %s" % (self.client_address[0], fmt % args))

    def log_request(self, code="-", size="-"):
        pass  # one line per request is written by _log() instead

    def _log(self, status, extra=""):
        dur = time.monotonic() - self._t0
        STATE.log("%s %s %s %s %.3fs%s" % (
            self.client_address[0], self.command, self.path, status, dur,
            (" " + extra) if extra else ""))

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = bytearray()
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ClientGone()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers
                        t = self.rfile.readline(8192)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    return bytes(out)
                if len(out) + size > MAX_BODY:
                    raise ValueError("body too large")
                chunk = self.rfile.read(size)
                if len(chunk) < size:
                    raise ClientGone()
                out += chunk
                self.rfile.readline(16)
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise ValueError("body too large")
        data = self.rfile.read(n) if n > 0 else b""
        if len(data) < n:
            raise ClientGone()
        return data

    def _send(self, status, body, ctype="application/json", headers=None):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()
        return status

    def _json(self, status, obj, headers=None):
        return self._send(status, json.dumps(obj, ensure_ascii=False), headers=headers)

    def _hold(self):
        """Wait until POST /_standin/release; False if the client went away
        or the server is stopping."""
        with STATE.lock:
            gate = STATE.gate
            STATE.held += 1
        sock = self.connection
        try:
            while not gate.is_set():
                if STATE.stop.is_set():
                    return False
                try:
                    r, _, _ = select.select([sock], [], [], 0.05)
                    if r and not sock.recv(1, socket.MSG_PEEK):
                        return False
                except (OSError, ValueError):
                    return False
                if r:
                    gate.wait(0.05)  # pipelined data: keep holding
            return True
        finally:
            with STATE.lock:
                STATE.held -= 1

    def _wait(self, seconds):
        """Sleep `seconds` (inf = forever); False if the client went away or
        the server is stopping."""
        deadline = time.monotonic() + seconds
        sock = self.connection
        while True:
            if STATE.stop.is_set():
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            try:
                r, _, _ = select.select([sock], [], [], min(left, 0.2))
            except (OSError, ValueError):
                return False
            if r:
                try:
                    peek = sock.recv(1, socket.MSG_PEEK)
                except OSError:
                    return False
                if not peek:
                    return False
                STATE.stop.wait(min(max(left, 0), 0.2))  # pipelined data: keep waiting

    # ---- dispatch ----

    def _dispatch(self):
        self._t0 = time.monotonic()
        path = urlsplit(self.path).path
        try:
            body = self._read_body()
        except ClientGone:
            self.close_connection = True
            return
        except ValueError as e:
            self.close_connection = True
            self._log(self._json(413, {"detail": str(e)}))
            return

        if path.rstrip("/") == GENERATE_PATH:
            if self.command != "POST":
                self._log(self._json(405, {"detail": "Method Not Allowed"}))
                return
            self._generate(body)
            return
        if path.startswith("/_standin/"):
            self._log(self._control(path, body))
            return
        self._log(self._json(404, {"detail": "Not Found"}))

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    # ---- control endpoints ----

    def _control(self, path, body):
        m = self.command
        if path == "/_standin/calls" and m == "GET":
            with STATE.lock:
                out = {"total": STATE.total, "by_job": dict(STATE.by_job),
                       "in_flight": STATE.in_flight,
                       "held": STATE.held,
                       "max_in_flight": STATE.max_in_flight,
                       "default_mode": STATE.default_mode,
                       "delay": STATE.delay}
            return self._json(200, out)
        if path.startswith("/_standin/calls/") and m == "GET":
            job = unquote(path[len("/_standin/calls/"):])
            with STATE.lock:
                calls = [dict(c) for c in STATE.calls.get(job, [])]
            return self._json(200, calls)
        if path == "/_standin/reset" and m == "POST":
            STATE.reset()
            try:
                req = json.loads(body.decode("utf-8") or "{}")
            except (ValueError, UnicodeDecodeError):
                req = {}
            if isinstance(req, dict) and req.get("all"):
                STATE.default_mode = None
                STATE.delay = STATE.start_delay
            return self._json(200, {"ok": True})
        if path == "/_standin/release" and m == "POST":
            with STATE.lock:
                released = STATE.held
                STATE.gate.set()
                STATE.gate = threading.Event()
            return self._json(200, {"released": released})
        if path == "/_standin/mode" and m in ("POST", "GET"):
            if m == "POST":
                try:
                    req = json.loads(body.decode("utf-8") or "{}")
                    if not isinstance(req, dict):
                        raise ValueError("expected a JSON object")
                    if "default" in req:
                        d = req["default"]
                        if d is not None:
                            if not isinstance(d, str):
                                raise ValueError("default must be a string or null")
                            parse_mode_text(d)
                            d = d.strip() or None
                        STATE.default_mode = d
                    if "delay" in req and req["delay"] is not None:
                        STATE.delay = max(0.0, float(req["delay"]))
                except BadMode as e:
                    return self._json(400, {"detail": "unknown flash mode %r" % str(e)})
                except (ValueError, TypeError, UnicodeDecodeError) as e:
                    return self._json(400, {"detail": str(e)})
            return self._json(200, {"default": STATE.default_mode, "delay": STATE.delay})
        return self._json(404, {"detail": "Not Found"})

    # ---- the Flash call ----

    def _generate(self, raw):
        headers = {}
        for k, v in self.headers.items():
            k = k.lower()
            if k == "x-service-key":
                v = "***"
            headers[k] = headers[k] + ", " + v if k in headers else v
        try:
            req = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            req = None
            parsed_ok = False
        else:
            parsed_ok = True
        obj = req if isinstance(req, dict) else {}
        query = obj.get("query")
        preset = obj.get("preset")
        rc = obj.get("request_context")
        job_id = rc.get("job_id") if isinstance(rc, dict) else None
        job_key = str(job_id) if job_id is not None else (
            "query:" + query if isinstance(query, str) else "-")

        entry = {"t": time.time(), "job_id": job_id, "query": query,
                 "preset": preset, "headers": headers,
                 "body": req if parsed_ok else raw.decode("utf-8", "replace"),
                 "status": None}
        nth = STATE.record(job_key, entry)
        STATE.enter()
        status = "-"
        note = "job=%s" % job_key
        try:
            status = self._generate_answer(entry, req, parsed_ok, query,
                                           preset, job_key, nth)
        except (ConnectionError, ClientGone):
            status = "client-gone"
            self.close_connection = True
        finally:
            STATE.leave()
            entry["status"] = status
            self._log(status, note)

    def _generate_answer(self, entry, req, parsed_ok, query, preset, job_key, nth):
        if STATE.key is not None and self.headers.get("X-Service-Key") != STATE.key:
            return self._json(401, {"detail": "Invalid service key"})
        if not parsed_ok:
            return self._json(422, {"detail": [{
                "type": "json_invalid", "loc": ["body", 0],
                "msg": "JSON decode error", "input": {}}]})
        if not isinstance(req, dict):
            return self._json(422, {"detail": [{
                "type": "model_attributes_type", "loc": ["body"],
                "msg": "Input should be a valid dictionary or object to extract fields from",
                "input": req}]})
        if not isinstance(query, str) or not query.strip():
            return self._json(422, {"detail": [{
                "type": "missing" if query is None else "string_type",
                "loc": ["body", "query"],
                "msg": "Field required" if query is None else "Input should be a valid non-empty string",
                "input": req}]})

        _, tokens = split_query(query)
        text = ",".join(tokens) if tokens else (STATE.default_mode or "")
        try:
            mode = parse_mode_text(text)
        except BadMode as e:
            return self._json(400, {"detail": "standin: unknown flash mode %r" % str(e)})
        entry["mode"] = text or None

        if mode["body"] == "hang":
            self._wait(float("inf"))
            self.close_connection = True
            return "hang-ended"

        if mode["hold"] and not self._hold():
            self.close_connection = True
            return "client-gone"

        delay = mode["delay"] if mode["delay"] is not None else STATE.delay
        if delay > 0 and not self._wait(delay):
            self.close_connection = True
            return "client-gone"

        if mode["fail"] is not None and nth <= mode["fail"]:
            return self._json(500, {"detail": "Pipeline error"})
        if mode["fail429"] is not None and nth <= mode["fail429"]:
            return self._json(429, {"detail": "Rate limited"}, {"Retry-After": "1"})

        if mode["status"]:
            code, detail = STATUS_MODES[mode["status"]]
            extra = {"Retry-After": "1"} if code == 429 else None
            return self._json(code, {"detail": detail}, extra)

        b = mode["body"]
        if b == "close":
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"id": "' + b"x" * 92 + b'"')  # 100 bytes
            self.wfile.flush()
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return "200-closed"
        if b == "garbage":
            return self._send(200, b"<html>oops")
        if b == "array":
            return self._send(200, b"[1,2,3]")

        scene = build_scene(query, preset, mode["scene"])
        if b == "huge":
            return self._send_huge(scene)
        return self._json(200, scene)

    def _send_huge(self, scene):
        marker = "@@STANDIN_HUGE_SUMMARY@@"
        scene["moment"]["plot_summary"] = marker
        text = json.dumps(scene, ensure_ascii=False)
        head, tail = text.split('"%s"' % marker, 1)
        head += '"'
        tail = '"' + tail
        head = head.encode("utf-8")
        tail = tail.encode("utf-8")
        fill = HUGE_BODY_SIZE - len(head) - len(tail)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(HUGE_BODY_SIZE))
        self.end_headers()
        self.wfile.write(head)
        chunk = FILLER * (65536 // len(FILLER))
        while fill > 0:
            part = chunk[:fill]
            self.wfile.write(part)
            fill -= len(part)
        self.wfile.write(tail)
        self.wfile.flush()
        return 200


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, ClientGone)):
            return
        STATE.log("error from %s: %r" % (client_address[0], exc))


def main(argv=None):
    global STATE
    ap = argparse.ArgumentParser(description="Flash stand-in for tests")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--key", default=None)
    ap.add_argument("--log", default=None)
    args = ap.parse_args(argv)

    STATE = State(max(0.0, args.delay), args.key, args.log)
    httpd = Server((args.host, args.port), Handler)
    port = httpd.server_address[1]

    stopping = threading.Event()

    def on_signal(signum, frame):
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2},
                         daemon=True)
    t.start()
    STATE.log("listening on %s:%d" % (args.host, port))
    sys.stdout.write("READY %d\n" % port)
    sys.stdout.flush()

    while not stopping.wait(5):
        pass  # the signal handler wakes this wait at once
    STATE.stop.set()
    httpd.shutdown()
    httpd.server_close()
    STATE.log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
