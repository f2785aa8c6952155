int chat4all_app_placeholder = 0;
