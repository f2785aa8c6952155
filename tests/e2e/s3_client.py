"""A tiny S3 client for the tests (stdlib only): SigV4-signed requests to the MinIO that
scripts/test.sh starts (CHAT4ALL_TEST_S3_* variables), to look at what the server left in the
bucket — multipart uploads and their parts, objects — independently of the server's own code."""

import datetime
import hashlib
import hmac
import http.client
import os
import re
import urllib.parse


def configured() -> bool:
    return bool(os.environ.get("CHAT4ALL_TEST_S3_ENDPOINT"))


def _env(name, default=""):
    return os.environ.get(f"CHAT4ALL_TEST_S3_{name}", default)


def _quote(s: str, safe: str = "-_.~") -> str:
    return urllib.parse.quote(s, safe=safe)


def request(method: str, key: str = "", query: dict | None = None, body: bytes = b""):
    """(status, headers, body) of a signed request on the bucket (key "" = the bucket)."""
    endpoint = urllib.parse.urlparse(_env("ENDPOINT"))
    region, bucket = _env("REGION", "us-east-1"), _env("BUCKET", "chat4all")
    access, secret = _env("ACCESS_KEY"), _env("SECRET_KEY")
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp, date = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    path = "/" + bucket + ("/" + key if key else "")
    cpath = _quote(path, safe="/-_.~")
    cquery = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted((query or {}).items()))
    payload = hashlib.sha256(body).hexdigest()
    headers = {"host": endpoint.netloc, "x-amz-content-sha256": payload, "x-amz-date": stamp}
    signed = ";".join(sorted(headers))
    canonical = "\n".join([method, cpath, cquery, "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
                           signed, payload])
    scope = f"{date}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = f"AWS4-HMAC-SHA256 Credential={access}/{scope}, SignedHeaders={signed}, Signature={sig}"
    conn = http.client.HTTPConnection(endpoint.hostname, endpoint.port, timeout=30)
    try:
        conn.request(method, cpath + ("?" + cquery if cquery else ""), body=body or None, headers=headers)
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


def _all(tag: str, xml: bytes) -> list[str]:
    return re.findall(rf"<{tag}>([^<]*)</{tag}>", xml.decode())


def multipart_uploads(prefix: str) -> list[tuple[str, str]]:
    """(key, upload id) of the unfinished multipart uploads under `prefix` (ListMultipartUploads)."""
    st, _, body = request("GET", query={"uploads": "", "prefix": prefix})
    assert st == 200, body
    return list(zip(_all("Key", body), _all("UploadId", body)))


def parts(key: str, upload_id: str) -> list[int] | None:
    """Part numbers of a multipart upload (ListParts), None when the upload does not exist."""
    st, _, body = request("GET", key, {"uploadId": upload_id})
    if st == 404:
        return None
    assert st == 200, body
    return [int(n) for n in _all("PartNumber", body)]


def objects(prefix: str) -> list[tuple[str, int]]:
    """(key, size) of the objects under `prefix` (ListObjectsV2)."""
    st, _, body = request("GET", query={"list-type": "2", "prefix": prefix})
    assert st == 200, body
    return list(zip(_all("Key", body), (int(s) for s in _all("Size", body))))
