from bot.guilds import GuildConfig, GuildService
from tests.postgres import both_engines

pytestmark = both_engines


async def test_a_guild_without_settings_gets_defaults(sessions):
    config = await GuildService(sessions).get(123)
    assert config == GuildConfig(guild_id=123)


async def test_settings_are_stored_and_read_back(sessions):
    service = GuildService(sessions)
    await service.update(123, host_role_id=5, workshop_channel_id=6)
    await service.update(123, max_steps=300)
    config = await service.get(123)
    assert (config.host_role_id, config.workshop_channel_id, config.max_steps) == (5, 6, 300)


def test_hosts_have_manage_server_or_the_host_role():
    config = GuildConfig(guild_id=1, host_role_id=42)
    assert config.is_host(manage_guild=True, role_ids=[])
    assert config.is_host(manage_guild=False, role_ids=[7, 42])
    assert not config.is_host(manage_guild=False, role_ids=[7])
    assert not GuildConfig(guild_id=1).is_host(manage_guild=False, role_ids=[7])


class CountingSessions:
    """The real session factory, counting the sessions opened (each is a round trip to the database)."""

    def __init__(self, sessions) -> None:
        self.sessions = sessions
        self.opened = 0

    def __call__(self):
        self.opened += 1
        return self.sessions()

    def begin(self):
        return self.sessions.begin()


async def test_settings_are_read_once_and_follow_every_update(sessions):
    counting = CountingSessions(sessions)
    service = GuildService(counting)  # type: ignore[arg-type]
    assert (await service.get(1)).queue_paused is False
    assert (await service.get(1)).queue_paused is False
    assert counting.opened == 1  # the second read came from memory
    await service.update(1, queue_paused=True)
    assert (await service.get(1)).queue_paused is True and counting.opened == 1
    assert (await GuildService(sessions).get(1)).queue_paused is True  # and the database has it


class ReadRacingAnUpdate(CountingSessions):
    """Sessions whose reads return the settings as they were, after a host's update landed meanwhile."""

    def __init__(self, sessions, service: GuildService) -> None:
        super().__init__(sessions)
        self.service = service

    def __call__(self):
        session = super().__call__()
        read = session.get

        async def get(*args, **kwargs):
            row = await read(*args, **kwargs)
            await self.service.update(7, max_steps=50)
            return row

        session.get = get
        return session


async def test_a_read_that_raced_an_update_is_not_kept(sessions):
    service = GuildService(sessions)
    service.sessions = ReadRacingAnUpdate(sessions, service)  # type: ignore[assignment]
    assert (await service.get(7)).max_steps is None  # this read saw the old settings...
    service.sessions = sessions
    assert (await service.get(7)).max_steps == 50  # ...and was not kept over the new ones
