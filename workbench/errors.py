"""Exceptions with messages a person can act on."""


class SignatureInputError(ValueError):
    """An input image that cannot be used as a signature (not an image, empty, too large, blank...).

    The message says what is wrong and what to do about it; the UI shows it as it is.
    """
