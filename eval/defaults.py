"""Defaults the eval commands show in their help, kept apart from the modules that use them: those
import the model libraries, and `cited --help` must not wait seconds for them."""

DEFAULT_K = 100  # documents kept per query in a BEIR run: recall@100
DEFAULT_MMR_LAMBDA = 0.7  # the diversity row of the ablation ladder
DEFAULT_TOP_K = 10  # results asked per question of the question set
LEVELS = (1, 4, 16, 64)  # concurrent clients of `cited bench load`
DRAFT_COUNT = 30  # questions `cited eval draft` leaves to write: enough for a first number; a set worth gating on has 60 or more
