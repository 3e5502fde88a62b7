import os

from hypothesis import HealthCheck, settings

# "ci": a fixed, derandomized set of examples that keeps the suite fast and repeatable.
# "dev": more examples, new ones each run, for hunting bugs locally (HYPOTHESIS_PROFILE=dev).
settings.register_profile(
    "ci",
    max_examples=50,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    max_examples=200,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
