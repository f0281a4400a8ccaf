"""The hosts' hints for daemon error codes: each names a code the daemon sends, the codes a user can fix
have one, and a 360° video the daemon cannot read is explained as it arrives from a live daemon."""

from __future__ import annotations

from pathlib import Path

import pytest
from bridge_fixtures import address_of, fake_settings, fast_engine, write_media

from visage.bridge.client import JobFailed, VisageClient
from visage.bridge.daemon import Daemon
from visage.bridge.errors import ErrorCode
from visage.host_plugins.common import host_client

# What the user's files, folders or daemon setup caused, and can change (the rest are protocol errors
# of a host plugin, or the engine's own failures).
USER_FIXABLE = {
    ErrorCode.PATH_NOT_ALLOWED,
    ErrorCode.MEDIA_NOT_FOUND,
    ErrorCode.UNAUTHORIZED,
    ErrorCode.OUTPUT_EXISTS,
    ErrorCode.BAD_RANGE,
    ErrorCode.BAD_OUTPUT,
    ErrorCode.QUEUE_FULL,
    ErrorCode.UNSUPPORTED_VIDEO,
}


def test_hints_name_the_daemons_codes_and_cover_what_a_user_can_fix() -> None:
    codes = {code.value for code in ErrorCode}
    assert set(host_client._HINTS) <= codes
    assert {code.value for code in USER_FIXABLE} <= set(host_client._HINTS)


def test_an_unsupported_360_video_is_explained(tmp_path: Path) -> None:
    reason = "clip.mp4: its spherical metadata says stereo top-bottom"
    with Daemon(fake_settings(tmp_path), fast_engine()) as daemon, VisageClient(address_of(daemon)) as client:
        job_id = client.submit(
            write_media(tmp_path), yaw=0.0, pitch=0.0, extra={"fake_fail": "unsupported_video"}
        )
        with pytest.raises(JobFailed) as failure:
            client.wait(job_id, timeout_s=10.0)
    assert failure.value.code == "unsupported_video"
    message = host_client.describe_error(failure.value)
    assert message.startswith("fake engine asked to fail (unsupported_video). ")
    assert "monoscopic equirectangular" in message and "stereo and cubemap" in message
    assert host_client.describe_failure("unsupported_video", reason).startswith(reason)
