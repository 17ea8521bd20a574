"""The base of the service's own records and API schemas."""

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """A pydantic model whose validator and serializer are built on first use instead of at import
    (`defer_build`): a Lambda's cold start builds only the models its requests use (the API handler
    imports some forty it rarely needs all of). Behaviour is otherwise BaseModel's."""

    model_config = ConfigDict(defer_build=True)
