"""The error of bad input. `InputError` is raised for a config, flag, file, store or program that
lengthgen refuses, with a message that says what is wrong and how to fix it; the command line prints
that message and exits 2. Any other exception is a bug in lengthgen and gets its traceback."""


class InputError(ValueError):
    """Bad input, told in words. A ValueError, so that pydantic validators and callers that catch
    ValueError keep working."""
