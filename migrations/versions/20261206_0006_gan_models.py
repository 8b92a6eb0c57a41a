"""gan_models: the generators each guild trains on its own images (/train)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 21:13:09.222402
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('gan_models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('guild_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('images', sa.Integer(), nullable=False),
    sa.Column('image_size', sa.Integer(), nullable=False),
    sa.Column('mirror', sa.Boolean(), nullable=False),
    sa.Column('steps', sa.Integer(), nullable=False),
    sa.Column('steps_done', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('training', 'ready', 'stopped', 'failed', name='ganstatus', native_enum=False, length=16), nullable=False),
    sa.Column('bytes_used', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_gan_models_job_id_jobs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gan_models')),
    sa.UniqueConstraint('guild_id', 'name', name=op.f('uq_gan_models_guild_id')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('gan_models', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gan_models_guild_id'), ['guild_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('gan_models', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gan_models_guild_id'))

    op.drop_table('gan_models')
