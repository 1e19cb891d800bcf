"""A real RTSP server as a camera, for the relay's ingest tests: gst-rtsp-server (Debian's
gir1.2-gst-rtsp-server-1.0) serving a live H.264 test pattern made by x264enc.

    rtsp_camera.py PORT

Serves rtsp://127.0.0.1:PORT/camera over TCP and UDP transports until killed; prints
"ready" on stdout once it listens.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(sys.argv[1])
factory = GstRtspServer.RTSPMediaFactory()
# A keyframe every second, no B-frames: like a surveillance camera's main stream.
factory.set_launch(
    "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=25/1 "
    "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 "
    "! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=1 )"
)
factory.set_shared(True)
server.get_mount_points().add_factory("/camera", factory)
if server.attach(None) == 0:
    sys.exit("cannot listen on port " + sys.argv[1])
print("ready", flush=True)
GLib.MainLoop().run()
