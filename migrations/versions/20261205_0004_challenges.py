"""challenges

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 01:57:23.078177
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('challenges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('guild_id', sa.BigInteger(), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('theme', sa.Text(), nullable=False),
    sa.Column('phase', sa.Enum('open', 'voting', 'closed', 'cancelled', name='challengephase', native_enum=False, length=16), nullable=False),
    sa.Column('published_phase', sa.Enum('open', 'voting', 'closed', 'cancelled', name='challengephase', native_enum=False, length=16), nullable=True),
    sa.Column('submissions_close_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('voting_close_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('required_words', sa.JSON(), nullable=False),
    sa.Column('techniques', sa.JSON(), nullable=False),
    sa.Column('entries_per_member', sa.Integer(), nullable=False),
    sa.Column('uploads_allowed', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('channel_id', sa.BigInteger(), nullable=False),
    sa.Column('announcement_message_id', sa.BigInteger(), nullable=True),
    sa.Column('thread_id', sa.BigInteger(), nullable=True),
    sa.Column('voting_sheet_message_id', sa.BigInteger(), nullable=True),
    sa.Column('final_message_id', sa.BigInteger(), nullable=True),
    sa.CheckConstraint('entries_per_member >= 1', name=op.f('ck_challenges_entries_per_member')),
    sa.CheckConstraint('voting_close_at >= submissions_close_at', name=op.f('ck_challenges_deadlines_in_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_challenges')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('challenges', schema=None) as batch_op:
        batch_op.create_index('ix_challenges_guild_phase', ['guild_id', 'phase'], unique=False)

    op.create_table('challenge_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('challenge_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('slot', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=True),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('recipe', sa.JSON(), nullable=True),
    sa.Column('image_path', sa.String(length=500), nullable=True),
    sa.Column('number', sa.Integer(), nullable=True),
    sa.Column('vote_message_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['challenge_id'], ['challenges.id'], name=op.f('fk_challenge_entries_challenge_id_challenges'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_challenge_entries_job_id_jobs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_challenge_entries')),
    sa.UniqueConstraint('challenge_id', 'number', name='uq_challenge_entries_number'),
    sa.UniqueConstraint('challenge_id', 'user_id', 'slot', name='uq_challenge_entries_slot'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('challenge_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_challenge_entries_challenge_id'), ['challenge_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_challenge_entries_user_id'), ['user_id'], unique=False)

    op.create_table('challenge_votes',
    sa.Column('challenge_id', sa.Integer(), nullable=False),
    sa.Column('voter_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('voted_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['challenge_id'], ['challenges.id'], name=op.f('fk_challenge_votes_challenge_id_challenges'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['entry_id'], ['challenge_entries.id'], name=op.f('fk_challenge_votes_entry_id_challenge_entries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('challenge_id', 'voter_id', name=op.f('pk_challenge_votes'))
    )
    with op.batch_alter_table('challenge_votes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_challenge_votes_entry_id'), ['entry_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('challenge_votes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_challenge_votes_entry_id'))

    op.drop_table('challenge_votes')
    with op.batch_alter_table('challenge_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_challenge_entries_user_id'))
        batch_op.drop_index(batch_op.f('ix_challenge_entries_challenge_id'))

    op.drop_table('challenge_entries')
    with op.batch_alter_table('challenges', schema=None) as batch_op:
        batch_op.drop_index('ix_challenges_guild_phase')

    op.drop_table('challenges')
