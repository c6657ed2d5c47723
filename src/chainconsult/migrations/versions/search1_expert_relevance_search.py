"""expert relevance search: skills in the weighted search vector, trigram word index

The directory's `search` vector gains the skills and gives each field its own weight class
(name A, headline B, skills C, bio D), so the ranking can weigh them independently. The
`search_words` column (name, headline and skills) carries a pg_trgm index for typo tolerance.
pg_trgm is a contrib extension: where the server lacks it (the embedded server does), the
index is skipped and searches are exact.

Revision ID: search1
Revises: i1
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "search1"
down_revision: str | None = "i1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# array_to_string is only STABLE (it formats any element type); on text[] it cannot vary,
# and generated columns need an IMMUTABLE expression.
SKILLS_TEXT = """
CREATE FUNCTION expert_skills_text(skills text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
RETURN array_to_string(skills, ' ')
"""
SEARCH = (
    "setweight(to_tsvector('english', coalesce(display_name, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(headline, '')), 'B') || "
    "setweight(to_tsvector('english', coalesce(expert_skills_text(skills), '')), 'C') || "
    "setweight(to_tsvector('english', coalesce(bio, '')), 'D')"
)
SEARCH_WORDS = (
    "coalesce(display_name, '') || ' ' || coalesce(headline, '') || ' ' || "
    "coalesce(expert_skills_text(skills), '')"
)
OLD_SEARCH = (
    "setweight(to_tsvector('english', coalesce(display_name, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(headline, '')), 'B') || "
    "setweight(to_tsvector('english', coalesce(bio, '')), 'C')"
)


def _trigrams_available() -> bool:
    bind = op.get_bind()
    query = sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    return bind.execute(query).first() is not None


def upgrade() -> None:
    op.execute(SKILLS_TEXT)
    op.drop_index("ix_expert_profiles_search", table_name="expert_profiles")
    op.drop_column("expert_profiles", "search")
    op.add_column(
        "expert_profiles",
        sa.Column("search", postgresql.TSVECTOR(), sa.Computed(SEARCH, persisted=True)),
    )
    op.add_column(
        "expert_profiles",
        sa.Column("search_words", sa.Text(), sa.Computed(SEARCH_WORDS, persisted=True)),
    )
    op.create_index(
        "ix_expert_profiles_search", "expert_profiles", ["search"], postgresql_using="gin"
    )
    if _trigrams_available():
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_expert_profiles_search_words ON expert_profiles "
            "USING gin (search_words gin_trgm_ops)"
        )


def downgrade() -> None:
    # The extension stays: other schemas may use it, and it costs nothing unused.
    op.execute("DROP INDEX IF EXISTS ix_expert_profiles_search_words")
    op.drop_index("ix_expert_profiles_search", table_name="expert_profiles")
    op.drop_column("expert_profiles", "search_words")
    op.drop_column("expert_profiles", "search")
    op.execute("DROP FUNCTION expert_skills_text(text[])")
    op.add_column(
        "expert_profiles",
        sa.Column("search", postgresql.TSVECTOR(), sa.Computed(OLD_SEARCH, persisted=True)),
    )
    op.create_index(
        "ix_expert_profiles_search", "expert_profiles", ["search"], postgresql_using="gin"
    )
