#include <cstdio>
int main() { std::puts("chat4all " CHAT4ALL_VERSION); }
