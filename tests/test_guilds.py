from bot.guilds import GuildConfig, GuildService


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
