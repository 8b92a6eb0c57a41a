"""course

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 12:41:53.883578
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A deleted job's id must never be given again: buttons, result folders and `job:123` name jobs by id.
    # SQLite reuses the highest rowid unless the table says AUTOINCREMENT; other databases never reuse ids.
    if op.get_bind().dialect.name == 'sqlite':
        with op.batch_alter_table('jobs', recreate='always', table_kwargs={'sqlite_autoincrement': True}):
            pass
    op.create_table('lessons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=60), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('links', sa.JSON(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('hidden', sa.Boolean(), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lessons')),
    sa.UniqueConstraint('slug', name=op.f('uq_lessons_slug'))
    )
    op.create_table('exercises',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('lesson_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('brief', sa.Text(), nullable=False),
    sa.Column('technique', sa.String(length=32), nullable=False),
    sa.Column('preset', sa.JSON(), nullable=False),
    sa.Column('images', sa.JSON(), nullable=False),
    sa.Column('submit_hint', sa.Text(), nullable=False),
    sa.Column('hidden', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['lesson_id'], ['lessons.id'], name=op.f('fk_exercises_lesson_id_lessons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exercises'))
    )
    with op.batch_alter_table('exercises', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exercises_lesson_id'), ['lesson_id'], unique=False)

    op.create_table('lesson_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('guild_id', sa.BigInteger(), nullable=False),
    sa.Column('lesson_id', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.BigInteger(), nullable=False),
    sa.Column('thread_id', sa.BigInteger(), nullable=True),
    sa.Column('announcement_message_id', sa.BigInteger(), nullable=True),
    sa.Column('started_by', sa.BigInteger(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['lesson_id'], ['lessons.id'], name=op.f('fk_lesson_runs_lesson_id_lessons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lesson_runs'))
    )
    with op.batch_alter_table('lesson_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lesson_runs_lesson_id'), ['lesson_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lesson_runs_thread_id'), ['thread_id'], unique=False)
        batch_op.create_index('uq_lesson_runs_open_per_guild', ['guild_id'], unique=True, sqlite_where=sa.text('ended_at IS NULL'), postgresql_where=sa.text('ended_at IS NULL'))

    op.create_table('submissions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('guild_id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('exercise_id', sa.String(length=40), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('recipe', sa.JSON(), nullable=True),
    sa.Column('image_path', sa.String(length=500), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('status', sa.Enum('submitted', 'approved', 'revise', name='submissionstatus', native_enum=False, length=16), nullable=False),
    sa.Column('latest', sa.Boolean(), nullable=False),
    sa.Column('posted_channel_id', sa.BigInteger(), nullable=True),
    sa.Column('posted_message_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['exercise_id'], ['exercises.id'], name=op.f('fk_submissions_exercise_id_exercises')),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_submissions_job_id_jobs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_submissions')),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_submissions_exercise_id'), ['exercise_id'], unique=False)
        batch_op.create_index('ix_submissions_guild_status', ['guild_id', 'status', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_submissions_user_id'), ['user_id'], unique=False)
        batch_op.create_index('uq_submissions_latest', ['guild_id', 'user_id', 'exercise_id'], unique=True, sqlite_where=sa.text('latest'), postgresql_where=sa.text('latest'))

    op.create_table('reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('reviewer_id', sa.BigInteger(), nullable=True),
    sa.Column('decision', sa.Enum('submitted', 'approved', 'revise', name='submissionstatus', native_enum=False, length=16), nullable=False),
    sa.Column('feedback', sa.Text(), nullable=True),
    sa.Column('told_by', sa.String(length=16), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("decision IN ('approved', 'revise')", name=op.f('ck_reviews_decision')),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], name=op.f('fk_reviews_submission_id_submissions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reviews')),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reviews_submission_id'), ['submission_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reviews_submission_id'))

    op.drop_table('reviews')
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_index('uq_submissions_latest', sqlite_where=sa.text('latest'), postgresql_where=sa.text('latest'))
        batch_op.drop_index(batch_op.f('ix_submissions_user_id'))
        batch_op.drop_index('ix_submissions_guild_status')
        batch_op.drop_index(batch_op.f('ix_submissions_exercise_id'))

    op.drop_table('submissions')
    with op.batch_alter_table('lesson_runs', schema=None) as batch_op:
        batch_op.drop_index('uq_lesson_runs_open_per_guild', sqlite_where=sa.text('ended_at IS NULL'), postgresql_where=sa.text('ended_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_lesson_runs_thread_id'))
        batch_op.drop_index(batch_op.f('ix_lesson_runs_lesson_id'))

    op.drop_table('lesson_runs')
    with op.batch_alter_table('exercises', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exercises_lesson_id'))

    op.drop_table('exercises')
    op.drop_table('lessons')
    if op.get_bind().dialect.name == 'sqlite':
        with op.batch_alter_table('jobs', recreate='always', table_kwargs={'sqlite_autoincrement': False}):
            pass
