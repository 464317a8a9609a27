"""Tuneboard's REST API v1 (django-ninja): runs, their metrics, checkpoints and events, and
datasets; self-hosted training scripts write their runs through it. Token auth only
(``Authorization: Bearer tb_…``), so no cookie and no CSRF token is involved."""
