#!/usr/bin/env python3
"""Renders the fuzz seeds: every message the sipp scenarios in tests/sipp/ send (keywords filled in as
sipp would fill them for one call over UDP), plus slotline's own answers and a baresip INVITE, into
fuzz/seeds/sip_message/ and their SDP bodies into fuzz/seeds/sdp/. Re-run after changing a scenario:
    python3 fuzz/seeds/render.py
"""
import pathlib
import re

root = pathlib.Path(__file__).resolve().parents[2]
out_sip = root / "fuzz/seeds/sip_message"
out_sdp = root / "fuzz/seeds/sdp"
for d in (out_sip, out_sdp):
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("*"):
        old.unlink()

values = {
    "service": "+15550100000", "remote_ip": "127.0.0.1", "remote_port": "5060", "local_ip": "127.0.0.1",
    "local_port": "5070", "transport": "UDP", "branch": "z9hG4bK-4242-1-0", "pid": "4242", "call_number": "1",
    "call_id": "1-4242@127.0.0.1", "local_ip_type": "4", "media_ip_type": "4", "media_ip": "127.0.0.1",
    "media_port": "6000", "peer_tag_param": ";tag=5107a9c0ffee", "last_Via:": "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-bye-1;rport",
    "last_From:": "From: <sip:+15550100000@127.0.0.1>;tag=5107a9c0ffee", "last_To:": "To: <sip:+15551234567@127.0.0.1:5070>;tag=4242SIPpTag001",
    "last_Call-ID:": "Call-ID: 1-4242@127.0.0.1", "last_CSeq:": "CSeq: 2 BYE",
    "authentication": 'Authorization: Digest username="trunk", realm="slotline", nonce="MTc2NDY0OTAwMC5hYmNk", '
                      'uri="sip:+15550100000@127.0.0.1:5060", response="6629fae49393a05397450978507c4ef1", algorithm=MD5',
}

def render(text):
    lines = [l.strip() for l in text.strip("\n").splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    head, body = [], []
    target = head
    for line in lines:
        if not line and target is head:
            target = body
            continue
        target.append(line)
    body_text = "".join(l + "\r\n" for l in body if l) if body else ""
    message = "\r\n".join(head) + "\r\n\r\n" + body_text
    message = re.sub(r"\[([A-Za-z_:\-]+)\]", lambda m: values.get(m.group(1), m.group(0)), message)
    message = message.replace("[len]", str(len(body_text.encode())))
    return message, body_text

count = 0
for scenario in sorted((root / "tests/sipp").glob("*.xml")):
    xml = scenario.read_text(encoding="latin-1")
    for i, cdata in enumerate(re.findall(r"<send[^>]*>\s*<!\[CDATA\[(.*?)\]\]>", xml, re.S)):
        message, body = render(cdata)
        name = f"{scenario.stem}-{i}"
        (out_sip / f"{name}.sip").write_bytes(message.encode())
        if body:
            (out_sdp / f"{name}.sdp").write_bytes(body.encode())
        count += 1

# slotline's 200 OK to an INVITE (a response, as slotline receives for its own BYE too).
answer_sdp = ("v=0\r\no=slotline 1 1 IN IP4 127.0.0.1\r\ns=slotline\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
              "m=audio 20000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
              "a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n")
ok = ("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-4242-1-0;rport=5070;received=127.0.0.1\r\n"
      "From: \"sipp\" <sip:+15551234567@127.0.0.1:5070>;tag=4242SIPpTag001\r\nTo: <sip:+15550100000@127.0.0.1:5060>;tag=5107a9c0ffee\r\n"
      "Call-ID: 1-4242@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:slotline@127.0.0.1:5060>\r\nServer: slotline/0.1.0\r\n"
      f"Content-Type: application/sdp\r\nContent-Length: {len(answer_sdp)}\r\n\r\n{answer_sdp}")
(out_sip / "slotline-200-ok.sip").write_bytes(ok.encode())
(out_sdp / "slotline-answer.sdp").write_bytes(answer_sdp.encode())

# baresip 1.0's INVITE (compact-free, its own SDP with telephone-event), as the softphone test sends it.
baresip_sdp = ("v=0\r\no=- 1830487351 1730372851 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
               "m=audio 25100 RTP/AVP 0 8 101\r\nb=AS:87\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
               "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\na=label:1\r\n"
               "a=ssrc:1264587426 cname:sip:+15557654321@127.0.0.1\r\na=rtcp-rsize\r\n")
invite = ("INVITE sip:+15550100000@127.0.0.1:5060 SIP/2.0\r\n"
          "Via: SIP/2.0/UDP 127.0.0.1:25070;branch=z9hG4bK53e76d1e1bdb4f0f;rport\r\n"
          "Contact: <sip:+15557654321-0x55d0@127.0.0.1:25070>\r\nMax-Forwards: 70\r\n"
          "To: <sip:+15550100000@127.0.0.1:5060>\r\nFrom: <sip:+15557654321@127.0.0.1>;tag=a6de0b9d2ac1f5e2\r\n"
          "Call-ID: 79960b3df14fb57f\r\nCSeq: 28419 INVITE\r\nUser-Agent: baresip v1.0.0 (x86_64/linux)\r\n"
          "Allow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,UPDATE,REFER\r\n"
          "Supported: replaces,norefersub,100rel\r\nContent-Type: application/sdp\r\n"
          f"Content-Length: {len(baresip_sdp)}\r\n\r\n{baresip_sdp}")
(out_sip / "baresip-invite.sip").write_bytes(invite.encode())
(out_sdp / "baresip-offer.sdp").write_bytes(baresip_sdp.encode())
# Compact headers and a TCP stream of two messages with keep-alive CRLFs between them.
compact = (invite.replace("Via:", "v:").replace("To:", "t:").replace("From:", "f:").replace("Call-ID:", "i:")
           .replace("Content-Length:", "l:").replace("Content-Type:", "c:"))
(out_sip / "baresip-invite-compact.sip").write_bytes(compact.encode())
(out_sip / "tcp-stream.sip").write_bytes(("\r\n\r\n" + invite + "\r\n\r\n" + ok).encode())
print(f"{count} scenario messages + 5 more in {out_sip}, SDP bodies in {out_sdp}")
