"""Start moto's AWS emulator on 127.0.0.1 for the Terraform apply/destroy test.

    python moto_server.py PORT

moto 5.x lacks Application Auto Scaling's tagging actions, which the AWS provider calls for every
aws_appautoscaling_target; they are added here (kept in memory, per resource ARN) before the server
starts. Everything else is plain moto.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse
from moto.server import main

_TAGS: defaultdict[str, dict[str, str]] = defaultdict(dict)


def _list_tags_for_resource(self: ApplicationAutoScalingResponse) -> str:
    return json.dumps({"Tags": _TAGS[self._get_param("ResourceARN")]})


def _tag_resource(self: ApplicationAutoScalingResponse) -> str:
    _TAGS[self._get_param("ResourceARN")].update(self._get_param("Tags") or {})
    return "{}"


def _untag_resource(self: ApplicationAutoScalingResponse) -> str:
    tags = _TAGS[self._get_param("ResourceARN")]
    for key in self._get_param("TagKeys") or []:
        tags.pop(key, None)
    return "{}"


ApplicationAutoScalingResponse.list_tags_for_resource = _list_tags_for_resource  # type: ignore[attr-defined]
ApplicationAutoScalingResponse.tag_resource = _tag_resource  # type: ignore[attr-defined]
ApplicationAutoScalingResponse.untag_resource = _untag_resource  # type: ignore[attr-defined]

if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: moto_server.py PORT")
    # Loopback only: the emulator accepts any credentials.
    main(["--host", "127.0.0.1", "--port", sys.argv[1]])
