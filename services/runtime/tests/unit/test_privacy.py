import json
import logging
import subprocess
import sys

from pydantic import ValidationError

from ejsika_contracts import HOUSEHOLD
from ejsika_runtime.dead_letters import describe
from ejsika_runtime.logs import JsonFormatter, MaskIdentifiers, correlation_id, mask_identifiers

NIK = "3672011203800001"


def test_any_sixteen_digit_run_is_masked_but_other_numbers_stay():
    assert mask_identifiers(f"nik={NIK}, kk 3672010101200001 region 3672011001") == \
        "nik=****************, kk **************** region 3672011001"
    assert mask_identifiers("36720112038000011") == "36720112038000011"


def test_log_lines_are_json_with_correlation_id_and_no_nik():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "member %s failed", (NIK,), None)
    MaskIdentifiers().filter(record)
    token = correlation_id.set("c-1")
    try:
        line = json.loads(JsonFormatter("registry").format(record))
    finally:
        correlation_id.reset(token)
    assert line["message"] == "member **************** failed"
    assert line["correlation_id"] == "c-1" and line["service"] == "registry"


def test_error_descriptions_never_carry_input_values():
    try:
        HOUSEHOLD.parse(json.dumps({"type": "household.registered", "data": {"nik": NIK}}).encode())
    except ValidationError as error:
        text = describe(error)
    assert NIK not in text and "validation error" in text
    assert NIK not in describe(RuntimeError(f"boom {NIK}"))


def test_the_frameworks_errors_are_the_services_json_lines_masked_too():
    """FastStream's logger comes with its own plain handler and does not propagate: its lines (a
    handler's exception, a failed commit) would bypass the JSON lines and their masking."""
    script = (
        "import logging\n"
        "from pathlib import Path\n"
        "from ejsika_runtime import logs\n"
        "from ejsika_runtime.service import Service\n"
        "from ejsika_runtime.settings import Settings\n"
        "logs.configure('registry')\n"
        "Service('registry', Settings(), Path('no-migrations'))\n"
        f"logging.getLogger('faststream').error('handler failed for {NIK}')\n"
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert NIK not in ran.stdout + ran.stderr
    [line] = [json.loads(text) for text in ran.stdout.splitlines() if "handler failed" in text]
    assert (line["logger"], line["level"], line["message"]) == ("faststream", "ERROR", "handler failed for ****************")
