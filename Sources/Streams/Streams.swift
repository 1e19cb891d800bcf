// The stream relays (FFmpeg ingest, GOP cache, fan-out, thumbnails) are not built yet:
// they are the subject of the stream-relays issue. The module exists, linked against
// CFFmpeg, so that the package layout is final; it has no API until then.
