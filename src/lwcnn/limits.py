"""Default limits shared by the CLI and the service, in one place (no heavy imports: the CLI's
argument parsers read them)."""

#: The largest image inspected (width x height) unless told otherwise, by ``lwcnn inspect`` and
#: ``lwcnn serve`` alike: a larger one is refused from its header, before it is decoded.
DEFAULT_MAX_PIXELS = 40_000_000
#: The longest side of an overlay picture: a larger image is drawn reduced, so that a picture of a
#: 36 M-pixel image costs megabytes, not gigabytes (masks keep the image's own size).
MAX_PICTURE_SIDE = 2048
