"""Real-looking secrets (right prefixes, lengths and alphabets) and clean text,
shared by the SDK's and the collector's redaction tests."""

from __future__ import annotations

ANTHROPIC = "sk-ant-api03-" + "Xk9_fQ2-Lm7pZr4TbW8nYc1VdE6sHg3JuK0aMo5iNq" * 2 + "-AA"
OPENAI_PROJECT = "sk-proj-" + "T3BlbkFJ4xY_7Qe-9WzLmNc2RvKp8HsDf0GaJtUy" * 3
OPENAI_LEGACY = "sk-" + "T3BlbkFJqWeRtYuIoPaSdFgHjKlZxCvBnM123456"
GOOGLE = "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
AWS_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SESSION_ID = "ASIAY34FZKBOKMUTVV7A"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GITHUB_CLASSIC = "ghp_" + "R8dYk2LmQ7vXz9NcT4bW1pHs6JfGa3Ue5Ko0"
GITHUB_FINE = "github_pat_11ABCDEFG0" + "Qm8Zt2Xy_" + "a" * 59
SLACK = "xoxb-2631245-5632138742-dX9kLmQ2vT7zRbN4cW8pHs1J"
STRIPE = "sk_live_" + "51HqLyjWDarjtT1zdp7dcXYZabc"
HUGGINGFACE = "hf_" + "pQrStUvWxYzAbCdEfGhIjKlMnOpQrStUv"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEA7bq7v2H5Xo4WJcQ7nCk3\nQ8yZ0p1m2N3b4V5c6X7z8A9s0D1f2G3h4J5k\n"
    "-----END RSA PRIVATE KEY-----"
)

# (text containing a secret, what it must become)
REDACTED = [
    (f"export ANTHROPIC_API_KEY={ANTHROPIC}", "export ANTHROPIC_API_KEY=[REDACTED:anthropic_key]"),
    (f'{{"api_key": "{OPENAI_PROJECT}"}}', '{"api_key": "[REDACTED:openai_key]"}'),
    (f"key {OPENAI_LEGACY}.", "key [REDACTED:openai_key]."),
    (f"maps?key={GOOGLE}&q=x", "maps?key=[REDACTED:google_api_key]&q=x"),
    (f"id {AWS_ID} / {AWS_SESSION_ID}", "id [REDACTED:aws_access_key] / [REDACTED:aws_access_key]"),
    (
        f"aws_secret_access_key = {AWS_SECRET}",
        "aws_secret_access_key = [REDACTED:aws_secret_key]",
    ),
    (f"git clone with {GITHUB_CLASSIC}", "git clone with [REDACTED:github_token]"),
    (f"token={GITHUB_FINE}", "token=[REDACTED:github_token]"),
    (f"slack: {SLACK}", "slack: [REDACTED:slack_token]"),
    (f"stripe.api_key = '{STRIPE}'", "stripe.api_key = '[REDACTED:stripe_key]'"),
    (f"HF_TOKEN={HUGGINGFACE}", "HF_TOKEN=[REDACTED:huggingface_token]"),
    (f"session={JWT}", "session=[REDACTED:jwt]"),
    (f"Authorization: Bearer {JWT}", "Authorization: Bearer [REDACTED:jwt]"),
    ("authorization: bearer 8f1c2a9e7b6d5c4f3a2b", "authorization: bearer [REDACTED:bearer_token]"),
    (
        "DATABASE_URL=postgresql://app:Pa55w0rd!x@db.internal:5432/prod",
        "DATABASE_URL=postgresql://app:[REDACTED:url_password]@db.internal:5432/prod",
    ),
    (f"key:\n{PRIVATE_KEY}\nthanks", "key:\n[REDACTED:private_key]\nthanks"),
    # cut short by truncation: what is left of the key still goes
    (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAA…",
        "[REDACTED:private_key]",
    ),
]

CLEAN = [
    "The agent retried the flaky test in tests/test_api.py with backoff.",
    "task-0123456789abcdefghijklmnop finished; disk-abcdefghijklmnopqrstuvwxyz full",
    "a Bearer of bad news",
    "https://example.com:8443/path/a@b and https://user@example.com/",
    "contact: jane.doe@example.com (e-mail is kept unless +email)",
    "AKIA is a prefix; AKIASHORT is not a key",
    "sk-short",
    '{"role": "assistant", "content": "use the secret manager"}',
    "",
]
