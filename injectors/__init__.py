"""Pluggable prompt rewriters: they turn recalled lessons into corrective context.

Injectors are pure: they receive the request's messages and the lessons recall found, and
return new messages. They never do I/O, so they are cheap to run and trivial to test.
"""

from injectors.base import Context, Injection, Injector, Message, RecalledLesson
from injectors.registry import InjectorRegistry, UnknownInjectorError, load_registry

__all__ = [
    "Context",
    "Injection",
    "Injector",
    "InjectorRegistry",
    "Message",
    "RecalledLesson",
    "UnknownInjectorError",
    "load_registry",
]
