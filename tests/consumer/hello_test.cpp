// Its functional test, with loupe's test kit from the installed package.
#define HELLO_NO_MAIN
#include "hello.cpp"

#include <loupe/testkit/test.hpp>

LOUPE_TEST(Consumer, HelloAnswers) {
  auto& srv = server(make_app());
  auto& http = client(srv);
  auto res = co_await http.get("/");
  CO_ASSERT_EQ(res.status_code(), 200u);
  EXPECT_EQ(res.text(), "hello from a consumer");
}
