/* make install / uninstall and the pkg-config file, from outside the tree (tests/install_test.sh). */
#include "testutil.h"

#include <string.h>

START_TEST(install_builds_programs_with_pkg_config_and_uninstall_removes_every_file)
{
    static char out[65536];
    int rc = tu_shell(out, sizeof out, "sh ./install_test.sh 2>&1");
    ck_assert_msg(rc == 0 && strstr(out, "install test: ok"), "exit %d:\n%s", rc, out);
}
END_TEST

Suite *suite_install(void)
{
    Suite *s = suite_create("install");
    TCase *tc = tcase_create("install");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, install_builds_programs_with_pkg_config_and_uninstall_removes_every_file);
    suite_add_tcase(s, tc);
    return s;
}
