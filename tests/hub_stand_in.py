"""A small local stand-in for the Hub's HTTP API: enough for HfApi uploads and for load_dataset to read back.

Only the edge we cannot reach is faked: repos live in memory, every file is uploaded inline ("regular"), and
downloads are served from the same store. Point HF_ENDPOINT at ``StandIn.url``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse


class StandIn:
    def __init__(self):
        self.repos: dict[str, dict[str, bytes]] = {}
        self.commits: dict[str, str] = {}
        self.requests: list[str] = []
        handler = type("Handler", (_Handler,), {"hub": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


REPO = r"(?P<kind>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)"


class _Handler(BaseHTTPRequestHandler):
    hub: StandIn

    def log_message(self, *args):  # keep test output clean
        pass

    def _send(self, status: int, body: bytes | dict | list = b"", headers: dict | None = None, head=False):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _key(self, match) -> str:
        return f"{match['kind']}/{match['repo']}"

    def _entries(self, files: dict[str, bytes], prefix: str, recursive: bool) -> list[dict]:
        prefix = prefix.strip("/")
        entries, folders = [], set()
        for path, data in sorted(files.items()):
            if prefix and not path.startswith(prefix + "/"):
                continue
            rest = path[len(prefix) + 1 :] if prefix else path
            if "/" in rest and not recursive:
                folders.add((prefix + "/" if prefix else "") + rest.split("/")[0])
                continue
            if recursive:
                parts = path.split("/")[:-1]
                folders.update(
                    "/".join(parts[: i + 1]) for i in range(len(parts)) if "/".join(parts[: i + 1]).startswith(prefix)
                )
            entries.append({"type": "file", "path": path, "size": len(data), "oid": hashlib.sha1(data).hexdigest()})
        entries += [
            {"type": "directory", "path": folder, "oid": "0" * 40} for folder in sorted(folders) if folder != prefix
        ]
        return entries

    def do_HEAD(self):
        self._get(head=True)

    def do_GET(self):
        self._get(head=False)

    def _get(self, head: bool):
        url = urlparse(self.path)
        path = unquote(url.path)
        self.hub.requests.append(f"GET {path}")
        if match := re.fullmatch(rf"/api/{REPO}(?:/revision/(?P<rev>[^/]+))?", path):
            key = self._key(match)
            if key not in self.hub.repos:
                return self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"}, head)
            files = self.hub.repos[key]
            info = {"id": match["repo"], "sha": self.hub.commits[key], "private": False, "disabled": False,
                    "siblings": [{"rfilename": name, "size": len(data)} for name, data in sorted(files.items())],
                    "tags": [], "downloads": 0, "likes": 0, "lastModified": "2026-01-01T00:00:00.000Z",
                    "createdAt": "2026-01-01T00:00:00.000Z", "gated": False}  # fmt: skip
            return self._send(200, info, head=head)
        if match := re.fullmatch(rf"/api/{REPO}/tree/(?P<rev>[^/]+)(?P<sub>/.*)?", path):
            files = self.hub.repos.get(self._key(match), {})
            recursive = parse_qs(url.query).get("recursive", ["false"])[0] == "true"
            return self._send(200, self._entries(files, match["sub"] or "", recursive), head=head)
        if match := re.fullmatch(
            r"/(?:(?P<kind>datasets|spaces)/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)", path
        ):  # noqa: E501
            key = f"{match['kind'] or 'models'}/{match['repo']}"
            data = self.hub.repos.get(key, {}).get(match["file"])
            if data is None:
                return self._send(404, b"", {"X-Error-Code": "EntryNotFound"}, head)
            headers = {"ETag": f'"{hashlib.sha1(data).hexdigest()}"', "X-Repo-Commit": self.hub.commits[key],
                       "Accept-Ranges": "bytes"}  # fmt: skip
            if (wanted := self.headers.get("Range")) and (found := re.fullmatch(r"bytes=(\d+)-(\d*)", wanted)):
                start = int(found[1])
                end = int(found[2]) if found[2] else len(data) - 1
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                return self._send(206, data[start : end + 1], headers, head)
            return self._send(200, data, headers, head)
        return self._send(404, {"error": f"stand-in does not serve GET {path}"}, head=head)

    def do_POST(self):
        path = unquote(urlparse(self.path).path)
        self.hub.requests.append(f"POST {path}")
        body = self._body()
        if path == "/api/repos/create":
            request = json.loads(body)
            owner = f"{request['organization']}/" if request.get("organization") else ""
            key = f"{request.get('type', 'model')}s/{owner}{request['name']}"
            existed = key in self.hub.repos
            self.hub.repos.setdefault(key, {})
            self.hub.commits.setdefault(key, "0" * 40)
            url = f"{self.hub.url}/{key}"
            return self._send(409 if existed else 200, {"url": url, "name": key.split("/", 1)[1]})
        if path == "/api/validate-yaml":
            return self._send(200, {"errors": [], "warnings": []})
        if match := re.fullmatch(rf"/api/{REPO}/preupload/(?P<rev>[^/]+)", path):
            files = json.loads(body)["files"]
            return self._send(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                              for f in files]})  # fmt: skip
        if match := re.fullmatch(rf"/api/{REPO}/commit/(?P<rev>[^/]+)", path):
            key = self._key(match)
            files = self.hub.repos.setdefault(key, {})
            for line in body.decode().splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                elif item["key"] == "deletedFile":
                    files.pop(item["value"]["path"], None)
            sha = hashlib.sha1(json.dumps(sorted(files)).encode() + str(len(self.hub.requests)).encode()).hexdigest()
            self.hub.commits[key] = sha
            return self._send(200, {"commitUrl": f"{self.hub.url}/{key}/commit/{sha}", "commitOid": sha,
                                    "pullRequestUrl": None})  # fmt: skip
        if match := re.fullmatch(rf"/api/{REPO}/paths-info/(?P<rev>[^/]+)", path):
            files = self.hub.repos.get(self._key(match), {})
            wanted = parse_qs(body.decode()).get("paths", [])
            if not wanted and body.startswith(b"{"):
                wanted = json.loads(body).get("paths", [])
            found = []
            for item in wanted:
                if item in files:
                    found.append({"type": "file", "path": item, "size": len(files[item]),
                                  "oid": hashlib.sha1(files[item]).hexdigest()})  # fmt: skip
                elif any(name.startswith(item.rstrip("/") + "/") for name in files) or item in ("", "."):
                    found.append({"type": "directory", "path": item, "oid": "0" * 40})
            return self._send(200, found)
        return self._send(404, {"error": f"stand-in does not serve POST {path}"})
