"""The three roles. Groups are (re)synchronised after every migrate, so permissions that later
apps add reach the admin role without a data migration."""

READ = "core.read_all"
ACT = "core.member_actions"

VIEWER = "viewer"
MEMBER = "member"
ADMIN = "admin"

ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    VIEWER: (READ,),
    MEMBER: (READ, ACT),
}
ALL_ROLES = (VIEWER, MEMBER, ADMIN)
