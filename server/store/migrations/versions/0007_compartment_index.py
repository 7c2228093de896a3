"""compartment index: which Patients' compartments hold each resource, apart from the reference index

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 00:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('idx_compartment',
    sa.Column('pk', sa.BigInteger(), nullable=False),
    sa.Column('patient', sa.String(length=255), nullable=False,
              comment="a Patient whose compartment holds the resource"),
    )
    op.create_index('ix_idx_compartment_pk', 'idx_compartment', ['pk', 'patient'])
    op.create_index('ix_idx_compartment_patient', 'idx_compartment', ['patient', 'pk'])
    keys = compartment_keys()
    # a record stored before: its compartment rows from its reference rows
    op.execute(sa.text(f"INSERT INTO idx_compartment (pk, patient) SELECT DISTINCT pk, tid FROM idx_reference "
                       f"WHERE ttype = 'Patient' AND sp IN ({', '.join(str(k) for k in keys)})"))


def compartment_keys() -> list[int]:
    """The keys of the bundled compartment's parameters (R4's and profiles/access/compartment.yaml); a
    compartment changed by ACCESS_POLICY_DIR takes `sharedcare reindex`."""
    from server.fhir.searchparams import param_key
    from server.security.policy import PolicyBook
    from server.store.search.reach import record_compartment
    from server.store.services import patient_compartment

    members = record_compartment(patient_compartment(), PolicyBook.load())
    return sorted({param_key(t, code) for t, codes in members.items() for code in codes})


def downgrade() -> None:
    op.drop_index('ix_idx_compartment_patient', table_name='idx_compartment')
    op.drop_index('ix_idx_compartment_pk', table_name='idx_compartment')
    op.drop_table('idx_compartment')
