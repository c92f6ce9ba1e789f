"""The survey API's request and reply bodies (pydantic models) and the patterns of its ids.

Every request body is a :class:`_Body`: its numbers must be JSON numbers, never booleans or
strings. The replies document the API (``/openapi.json``).
"""

from typing import Any

from pydantic import BaseModel, Field, model_validator

__all__ = [
    "ID_PATTERN",
    "KEY_PATTERN",
    "MTURK_SUBMIT",
    "PARTICIPANT_PATTERN",
    "AnswerReply",
    "AnswerRequest",
    "CheckReply",
    "CheckRequest",
    "Closed",
    "Comment",
    "CommentReply",
    "CommentRequest",
    "Comments",
    "Coverage",
    "DeclineReply",
    "Device",
    "ErrorBody",
    "ParticipantStatus",
    "Participants",
    "Progress",
    "QuestionState",
    "Screen",
    "ScreenRequest",
    "Sequential",
    "SessionReply",
    "SessionRequest",
    "StudyState",
    "TrialReply",
]

ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,128}$"
PARTICIPANT_PATTERN = r"^[0-9a-f]{32}$"
KEY_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MTURK_SUBMIT = r"^https://(www|workersandbox)\.mturk\.com/?$"
SHOWN_PATTERN = r"^[0-9]{1,16}\.[0-9a-f]{32}$"
VERSION_PATTERN = r"^[0-9a-f]{16}$"


def _number(value: Any) -> Any:
    # pydantic would read true/false as 1/0 and "7" as 7; a JSON body must send numbers
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ValueError(f"a number is required, not {type(value).__name__}")
    return value


class _Body(BaseModel):
    """A request body: numbers must be JSON numbers (not booleans or strings)."""

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            numeric = {
                name
                for name, f in cls.model_fields.items()
                if f.annotation in (int, float, int | None, float | None)
            }
            for name in numeric & set(data):
                _number(data[name])
        return data


class Screen(_Body):
    w: int = Field(ge=0, le=100_000)
    h: int = Field(ge=0, le=100_000)


class Device(_Body):
    """What the page measured of the participant's device (checked against the study's
    requirements; the browser comes from the User-Agent header)."""

    width: int = Field(ge=0, le=100_000, description="the window's inner width, CSS px")
    height: int = Field(ge=0, le=100_000, description="the window's inner height, CSS px")
    pointer: str = Field(pattern="^(mouse|touch|none)$", description="the primary pointer")


class CheckRequest(_Body):
    platform: str = Field(pattern="^(prolific|mturk|link)$")
    device: Device


class CheckReply(BaseModel):
    ok: bool
    lacks: list[str] = Field(description="what the device lacks, in a few words each")
    next_step: str | None = Field(description="what to do instead, on the platform")


class SessionRequest(_Body):
    platform: str = Field(pattern="^(prolific|mturk|link|bot)$")
    pid: str = Field(pattern=ID_PATTERN)
    device: Device | None = Field(
        default=None, description="required when the study has device requirements"
    )
    study: str | None = Field(default=None, pattern=ID_PATTERN)
    session: str | None = Field(default=None, pattern=ID_PATTERN)
    screen: Screen | None = None
    bot_token: str | None = Field(
        default=None,
        max_length=128,
        description="required with platform 'bot' (given to `percalign survey bots`)",
    )


class SessionReply(BaseModel):
    participant: str
    token: str = Field(description="send as 'Authorization: Bearer TOKEN' on participant calls")
    resumed: bool
    next: int
    total: int
    min_display_ms: int = Field(description="a choice counts after this long on screen")
    done: bool = False
    outcome: str | None = None
    completion_code: str | None = Field(
        default=None, description="only for a finished participant, for their outcome"
    )


class TrialReply(BaseModel):
    position: int
    total: int
    kind: str = Field(
        default="choice",
        description="'choice': pick the candidate like the query; 'screen': a matching "
        "screen, assign each of 'iris' to one of the candidates (the screen's targets) and "
        "send them together to .../screens",
    )
    query: str | None = Field(
        description="URL of the image on top, for this trial only (none on a screen)"
    )
    candidates: list[str] = Field(description="URLs of the options, in display order")
    iris: list[str] | None = Field(
        default=None, description="a screen's images to assign, in display order"
    )
    shown: str = Field(description="send back with the answer to this trial")
    step: int = Field(description="this trial among the participant's, from 0 (a screen is one)")
    steps: int = Field(description="the participant's trials, a screen counting as one")
    embedded: list[str] | None = Field(
        default=None,
        description="the same images as data: URLs (the query or the screen's IRIs first, "
        "then the candidates), when they are small enough to travel in the reply; show "
        "these and fetch nothing",
    )


class AnswerRequest(_Body):
    position: int = Field(ge=0, le=100_000)
    choice: int = Field(ge=0, le=1_000)
    rt_ms: float | None = Field(default=None, ge=0, le=3_600_000)
    client_time: float | None = Field(default=None, allow_inf_nan=False)
    shown: str | None = Field(
        default=None,
        pattern=SHOWN_PATTERN,
        description="the trial's 'shown' value; required for a new answer",
    )
    version: str | None = Field(
        default=None,
        pattern=VERSION_PATTERN,
        description="the page's version (its data's 'version'); an answer from a page of "
        "another version is refused (409 with 'reload': true) and the page must be reloaded",
    )


class ScreenRequest(_Body):
    position: int = Field(ge=0, le=100_000, description="the screen's first trial")
    assignments: list[int] = Field(
        min_length=1,
        max_length=200,
        description="for each of the screen's IRIs (display order), the display position of "
        "the target it is assigned to",
    )
    rt_ms: float | None = Field(default=None, ge=0, le=3_600_000)
    client_time: float | None = Field(default=None, allow_inf_nan=False)
    shown: str | None = Field(
        default=None,
        pattern=SHOWN_PATTERN,
        description="the screen's 'shown' value; required for a new submission",
    )
    version: str | None = Field(default=None, pattern=VERSION_PATTERN)

    @model_validator(mode="before")
    @classmethod
    def _assignments_are_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("assignments"), list):
            for value in data["assignments"]:
                _number(value)
        return data


class AnswerReply(BaseModel):
    position: int
    next: int | None
    done: bool
    duplicate: bool
    outcome: str | None = None
    completion_code: str | None = None
    trial: TrialReply | None = Field(
        default=None,
        description="trial 'next', served with this reply (no GET needed); none when done",
    )


class DeclineReply(BaseModel):
    completion_code: str | None = Field(
        description="the study's no-consent code (Prolific), if one is set up"
    )


class CommentRequest(_Body):
    key: str = Field(pattern=KEY_PATTERN, description="chosen by the client; a resend is a no-op")
    position: int | None = Field(default=None, ge=0, le=100_000)
    text: str = Field(min_length=1, max_length=2000)


class CommentReply(BaseModel):
    stored: bool


class Coverage(BaseModel):
    judgments_per_item: int = Field(description="R: judgments the design promised per item")
    items: int
    items_short: dict[str, int] = Field(
        description="items with fewer than R judgments from completed participants: their count"
    )
    participants_needed: int = Field(description="completed participants still needed")
    median_trial_ms: float | None = Field(description="from serving a trial to its answer")
    median_session_s: float | None


class QuestionState(BaseModel):
    question: str = Field(description="the contrast, e.g. 'model: a - b'")
    state: str = Field(
        description="difference | futile | reached | unreachable (settled) or undecided"
    )
    looks: int
    needed: int | None = Field(
        default=None,
        description="undecided: the budget its declared power needs, from the answers so far "
        "(None: out of reach at these IRIs, or not known)",
    )
    participants: int = Field(description="kept participants at its last look")
    estimate: float
    low: float = Field(description="repeated confidence interval (holds over every look)")
    high: float


class Sequential(BaseModel):
    budget: int = Field(description="the most kept participants")
    looks: list[int] = Field(description="kept participants at each declared look")
    looks_taken: int
    next_look: int | None = Field(description="kept participants at the next look")
    kept: int = Field(description="kept participants at the last look")
    questions: list[QuestionState]
    stopped: dict[str, Any] | None = Field(description="why the study closed itself")
    recruit: bool = Field(description="whether to keep recruiting")
    lines: list[str] = Field(default_factory=list, description="the state in sentences")


class StudyState(BaseModel):
    open: bool = Field(description="whether new sessions may start")


class Progress(BaseModel):
    participants: dict[str, int]
    screened_out: dict[str, int] = Field(
        default_factory=dict,
        description="visitors whose device lacked what the study requires, by what it lacked",
    )
    started: int
    completed: int
    answers: int
    answers_per_item: dict[str, int]
    comments: int
    closed: bool
    coverage: Coverage
    sequential: Sequential | None = Field(
        default=None, description="a sequential survey's looks and questions"
    )


class ParticipantStatus(BaseModel):
    participant: str
    status: str = Field(description="active | completed | failed_attention | abandoned")
    slot: int
    platform: str
    answered: int
    total: int
    started: str | None
    last_active: str | None


class Participants(BaseModel):
    participants: list[ParticipantStatus]


class Comment(BaseModel):
    participant: str
    position: int | None
    text: str
    time: str


class Comments(BaseModel):
    comments: list[Comment]


class Closed(BaseModel):
    closed: bool


class ErrorBody(BaseModel):
    error: str
    retry_after: float | None = None
    reload: bool | None = Field(
        default=None, description="true when the page is out of date: reload it (a 409)"
    )
