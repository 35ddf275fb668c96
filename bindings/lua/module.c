/* Placeholder until the Lua module lands. */
int lcmc_lua_placeholder(void);
int lcmc_lua_placeholder(void)
{
    return 0;
}
