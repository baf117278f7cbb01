"""Feast entities of the credit-risk feature repo.

One entity: the applicant (pseudonymised id). Applications are not an entity: they are the
entity rows of a training set (applicant + application timestamp), and their own fields come
with the application, not from the feature store.
"""

from feast import Entity, ValueType

from mlgate.data import schema

applicant = Entity(
    name=schema.FEAST_ENTITY,
    join_keys=[schema.APPLICANT_ID],
    value_type=ValueType.STRING,
    description="A (pseudonymised) loan applicant.",
)
